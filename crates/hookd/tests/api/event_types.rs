//! Event types: create, upsert, patch, archive, expunge, list.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn create_returns_201_and_a_duplicate_returns_409_event_type_exists() {
    let app = TestApp::spawn().await;
    let schema = json!({"1": {"type": "object", "properties": {"type": {"type": "string"}}}});
    let (status, body) = app
        .post(
            "/api/v1/event-type",
            json!({"name": "content.published", "description": "Published", "schemas": schema}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "content.published");
    assert_eq!(body["schemas"], schema);
    assert_eq!(
        (body["archived"].clone(), body["deprecated"].clone()),
        (json!(false), json!(false))
    );
    assert!(body.get("featureFlag").is_some());
    let (status, body) = app
        .post(
            "/api/v1/event-type",
            json!({"name": "content.published", "description": "again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"code": "event_type_exists", "detail": "An event_type with this name already exists"})
    );
}

#[tokio::test]
async fn invalid_event_types_return_422() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post("/api/v1/event-type", json!({"name": "bad name", "description": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    let (status, body) = app.post("/api/v1/event-type", json!({"name": "ok.name"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "description"]));
    let (status, body) = app
        .post(
            "/api/v1/event-type",
            json!({"name": "ok.name", "description": "x", "schemas": [1]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "schemas"]));
}

#[tokio::test]
async fn get_put_patch_and_unknown_names() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/v1/event-type",
        json!({"name": "user.created", "description": "A user"}),
    )
    .await;
    let (status, body) = app.get("/api/v1/event-type/user.created").await;
    assert_eq!((status, body["description"].clone()), (StatusCode::OK, json!("A user")));
    let (status, body) = app
        .call(
            "PATCH",
            "/api/v1/event-type/user.created",
            Some(json!({"deprecated": true})),
        )
        .await;
    assert_eq!(
        (status, body["deprecated"].clone(), body["description"].clone()),
        (StatusCode::OK, json!(true), json!("A user"))
    );
    let (status, body) = app
        .call(
            "PUT",
            "/api/v1/event-type/user.created",
            Some(json!({"description": "Replaced"})),
        )
        .await;
    assert_eq!(
        (status, body["description"].clone(), body["deprecated"].clone()),
        (StatusCode::OK, json!("Replaced"), json!(false))
    );
    let (status, body) = app
        .call(
            "PUT",
            "/api/v1/event-type/user.updated",
            Some(json!({"description": "New"})),
        )
        .await;
    assert_eq!(
        (status, body["name"].clone()),
        (StatusCode::CREATED, json!("user.updated"))
    );
    for (method, body) in [("GET", None), ("PATCH", Some(json!({}))), ("DELETE", None)] {
        let (status, out) = app.call(method, "/api/v1/event-type/no.such", body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(out["code"], "not_found");
    }
}

#[tokio::test]
async fn delete_archives_and_create_restores_while_expunge_removes() {
    let app = TestApp::spawn().await;
    app.post("/api/v1/event-type", json!({"name": "a.b", "description": "x"}))
        .await;
    assert_eq!(
        app.call("DELETE", "/api/v1/event-type/a.b", None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, body) = app.get("/api/v1/event-type/a.b").await;
    assert_eq!(body["archived"], true);
    let (_, list) = app.get("/api/v1/event-type").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "archived types are hidden by default"
    );
    let (_, list) = app.get("/api/v1/event-type?include_archived=true").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    app.create_app("ws_et").await;
    let (status, _) = app
        .post(
            "/api/v1/app/ws_et/endpoint",
            json!({"url": "https://example.com/", "eventTypes": ["a.b"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "archived types cannot be subscribed to"
    );
    let (status, body) = app
        .post("/api/v1/event-type", json!({"name": "a.b", "description": "back"}))
        .await;
    assert_eq!((status, body["archived"].clone()), (StatusCode::CREATED, json!(false)));
    assert_eq!(
        app.call("DELETE", "/api/v1/event-type/a.b?expunge=true", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get("/api/v1/event-type/a.b").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_is_ordered_by_name_and_schemas_come_with_content_only() {
    let app = TestApp::spawn().await;
    for name in ["c.c", "a.a", "b.b"] {
        app.post(
            "/api/v1/event-type",
            json!({"name": name, "description": name, "schemas": {"1": {"type": "object"}}}),
        )
        .await;
    }
    let (_, page) = app.get("/api/v1/event-type?limit=2").await;
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a.a", "b.b"]);
    assert_eq!(
        (
            page["iterator"].clone(),
            page["prevIterator"].clone(),
            page["done"].clone()
        ),
        (json!("b.b"), json!("-a.a"), json!(false))
    );
    assert!(page["data"][0]["schemas"].is_null());
    let (_, next) = app
        .get("/api/v1/event-type?limit=2&iterator=b.b&with_content=true")
        .await;
    assert_eq!(next["data"][0]["name"], "c.c");
    assert_eq!(next["data"][0]["schemas"], json!({"1": {"type": "object"}}));
    assert_eq!(next["done"], true);
}

//! Applications: CRUD, uid addressing, get_if_exists, pagination, errors.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn create_application_returns_201_with_svix_fields() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/app",
            json!({"name": "Acme", "uid": "ws_1", "metadata": {"plan": "pro"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("app_") && id.len() == 31, "{id}");
    assert_eq!(body["uid"], "ws_1");
    assert_eq!(body["name"], "Acme");
    assert_eq!(body["metadata"], json!({"plan": "pro"}));
    assert!(body["throttleRate"].is_null() && body.get("throttleRate").is_some());
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn application_without_uid_omits_the_field_like_svix() {
    let app = TestApp::spawn().await;
    let (_, body) = app.post("/api/v1/app", json!({"name": "No uid"})).await;
    assert!(body.get("uid").is_none(), "{body}");
}

#[tokio::test]
async fn duplicate_uid_returns_409_and_get_if_exists_returns_the_existing_app() {
    let app = TestApp::spawn().await;
    let first = app.create_app("ws_dup").await;
    let (status, body) = app.post("/api/v1/app", json!({"name": "Again", "uid": "ws_dup"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");
    let (status, body) = app
        .post(
            "/api/v1/app?get_if_exists=true",
            json!({"name": "Again", "uid": "ws_dup"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], first["id"]);
}

#[tokio::test]
async fn invalid_fields_return_422_with_each_location() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/api/v1/app", json!({"name": "", "uid": "app_bad"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<_> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(locs, vec![json!(["body", "name"]), json!(["body", "uid", "__all__"])]);
    let (status, body) = app.post("/api/v1/app", json!({"uid": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    let (status, body) = app.post("/api/v1/app", json!({"name": "x", "uid": "has space"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "uid"]));
}

#[tokio::test]
async fn malformed_json_returns_422_jsondecode() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(format!("{}/api/v1/app", app.base))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["detail"][0]["type"], "value_error.jsondecode");
}

#[tokio::test]
async fn get_put_patch_delete_by_id_and_uid() {
    let app = TestApp::spawn().await;
    let created = app.create_app("ws_crud").await;
    let id = created["id"].as_str().unwrap();
    for key in [id, "ws_crud"] {
        let (status, body) = app.get(&format!("/api/v1/app/{key}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], id);
    }
    let (status, body) = app
        .call("PATCH", "/api/v1/app/ws_crud", Some(json!({"name": "Renamed"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Renamed");
    assert_eq!(body["uid"], "ws_crud", "patch keeps fields it does not name");
    let (status, body) = app
        .call("PATCH", "/api/v1/app/ws_crud", Some(json!({"throttleRate": 5})))
        .await;
    assert_eq!((status, body["throttleRate"].clone()), (StatusCode::OK, json!(5)));
    let (status, body) = app
        .call("PATCH", "/api/v1/app/ws_crud", Some(json!({"throttleRate": null})))
        .await;
    assert_eq!((status, body["throttleRate"].clone()), (StatusCode::OK, json!(null)));
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/app/{id}"),
            Some(json!({"name": "Put", "uid": "ws_crud"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Put");
    let (status, _) = app
        .call("PUT", "/api/v1/app/ws_new_put", Some(json!({"name": "Created by PUT"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.call("DELETE", "/api/v1/app/ws_crud", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.get("/api/v1/app/ws_crud").await.0, StatusCode::NOT_FOUND);
    // The uid is free again after a delete.
    app.create_app("ws_crud").await;
}

#[tokio::test]
async fn unknown_application_returns_404_in_svix_shape() {
    let app = TestApp::spawn().await;
    for (method, body) in [("GET", None), ("PATCH", Some(json!({"name": "x"}))), ("DELETE", None)] {
        let (status, body) = app.call(method, "/api/v1/app/ws_missing", body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(body, json!({"code": "not_found", "detail": "Entity not found"}));
    }
}

#[tokio::test]
async fn list_pages_forwards_and_backwards_with_iterators() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        app.clock.advance(std::time::Duration::from_millis(1));
        ids.push(
            app.create_app(&format!("ws_page_{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (status, page1) = app.get("/api/v1/app?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let got: Vec<_> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids[..2]);
    assert_eq!(page1["done"], false);
    assert_eq!(page1["iterator"], ids[1].as_str());
    assert_eq!(page1["prevIterator"], format!("-{}", ids[0]));
    let (_, page2) = app.get(&format!("/api/v1/app?limit=2&iterator={}", ids[1])).await;
    let got: Vec<_> = page2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids[2..4]);
    let (_, back) = app.get(&format!("/api/v1/app?limit=2&iterator=-{}", ids[2])).await;
    let got: Vec<_> = back["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ids[..2]);
    let (_, last) = app.get(&format!("/api/v1/app?limit=2&iterator={}", ids[3])).await;
    assert_eq!(last["done"], true);
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    let (_, desc) = app.get("/api/v1/app?limit=1&order=descending").await;
    assert_eq!(desc["data"][0]["id"], ids[4].as_str());
}

#[tokio::test]
async fn empty_list_has_null_iterators_and_done() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/v1/app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"data": [], "iterator": null, "prevIterator": null, "done": true})
    );
}

#[tokio::test]
async fn limit_above_250_returns_422_on_the_query() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/v1/app?limit=251").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "limit", "limit"]));
    assert_eq!(app.get("/api/v1/app?limit=250").await.0, StatusCode::OK);
}

#[tokio::test]
async fn trailing_slashes_are_accepted() {
    let app = TestApp::spawn().await;
    app.create_app("ws_slash").await;
    assert_eq!(app.get("/api/v1/app/").await.0, StatusCode::OK);
    assert_eq!(app.get("/api/v1/app/ws_slash/").await.0, StatusCode::OK);
    let (status, _) = app.post("/api/v1/app/", json!({"name": "slash"})).await;
    assert_eq!(status, StatusCode::CREATED);
}

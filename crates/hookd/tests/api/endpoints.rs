//! Endpoints: CRUD, uid addressing, secrets, custom headers, validation.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn create_endpoint_returns_201_in_svix_shape_without_the_secret() {
    let app = TestApp::spawn().await;
    app.create_app("ws_ep").await;
    let (status, body) = app
        .post(
            "/api/v1/app/ws_ep/endpoint",
            json!({"url": app.receiver.url("/ok"), "uid": "main", "description": "main", "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("ep_") && id.len() == 30, "{id}");
    for field in [
        "uid",
        "url",
        "description",
        "disabled",
        "eventTypes",
        "filterTypes",
        "channels",
        "throttleRate",
        "rateLimit",
        "metadata",
        "version",
        "createdAt",
        "updatedAt",
    ] {
        assert!(body.get(field).is_some(), "missing {field}: {body}");
    }
    assert_eq!(body["disabled"], false);
    assert!(body["eventTypes"].is_null() && body["channels"].is_null());
    assert!(
        !body.to_string().contains("whsec_"),
        "the secret is never in EndpointOut"
    );
}

#[tokio::test]
async fn endpoint_on_unknown_application_returns_404() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/v1/app/ws_nope/endpoint",
            json!({"url": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    assert_eq!(app.get("/api/v1/app/ws_nope/endpoint").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_endpoint_fields_return_422_with_their_location() {
    let app = TestApp::spawn().await;
    app.create_app("ws_bad").await;
    let cases = [
        (json!({"url": "not a url"}), json!(["body", "url"])),
        (json!({"url": "ftp://example.com/"}), json!(["body", "url"])),
        (json!({}), json!(["body", "url"])),
        (
            json!({"url": "https://example.com/", "eventTypes": ["no.such.type"]}),
            json!(["body", "eventTypes"]),
        ),
        (
            json!({"url": "https://example.com/", "channels": ["ok", "not ok"]}),
            json!(["body", "channels", "1"]),
        ),
        (
            json!({"url": "https://example.com/", "uid": "ep_x"}),
            json!(["body", "uid", "__all__"]),
        ),
        (
            json!({"url": "https://example.com/", "secret": "whsec_c2hvcnQ="}),
            json!(["body", "secret"]),
        ),
        (
            json!({"url": "https://example.com/", "throttleRate": 0}),
            json!(["body", "throttleRate"]),
        ),
        (
            json!({"url": "https://example.com/", "headers": {"Content-Type": "text/plain"}}),
            json!(["body", "headers", "Content-Type"]),
        ),
        (
            json!({"url": "https://example.com/", "disabled": "yes"}),
            json!(["body", "disabled"]),
        ),
    ];
    for (input, loc) in cases {
        let (status, body) = app.post("/api/v1/app/ws_bad/endpoint", input.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{input}: {body}");
        assert_eq!(body["detail"][0]["loc"], loc, "{input}: {body}");
    }
    let (_, body) = app
        .post(
            "/api/v1/app/ws_bad/endpoint",
            json!({"url": "https://example.com/", "eventTypes": ["no.such.type"]}),
        )
        .await;
    assert_eq!(
        body["detail"][0]["msg"],
        "The following event types don't exist: no.such.type"
    );
}

#[tokio::test]
async fn duplicate_endpoint_uid_in_one_app_returns_409_but_other_apps_may_reuse_it() {
    let app = TestApp::spawn().await;
    app.create_app("ws_a").await;
    app.create_app("ws_b").await;
    app.create_endpoint("ws_a", "/ok", json!({"uid": "main"})).await;
    let (status, body) = app
        .post(
            "/api/v1/app/ws_a/endpoint",
            json!({"url": app.receiver.url("/ok"), "uid": "main"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");
    app.create_endpoint("ws_b", "/ok", json!({"uid": "main"})).await;
}

#[tokio::test]
async fn get_put_patch_delete_by_id_and_uid() {
    let app = TestApp::spawn().await;
    app.create_app("ws_crud").await;
    let ep = app
        .create_endpoint("ws_crud", "/ok", json!({"uid": "main", "metadata": {"k": "v"}}))
        .await;
    let id = ep["id"].as_str().unwrap();
    for key in [id, "main"] {
        let (status, body) = app.get(&format!("/api/v1/app/ws_crud/endpoint/{key}")).await;
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(id)));
    }
    let (status, body) = app
        .call(
            "PATCH",
            "/api/v1/app/ws_crud/endpoint/main",
            Some(json!({"description": "patched", "disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["description"].clone(),
            body["disabled"].clone(),
            body["metadata"].clone()
        ),
        (json!("patched"), json!(true), json!({"k": "v"}))
    );
    let (_, body) = app
        .call(
            "PATCH",
            "/api/v1/app/ws_crud/endpoint/main",
            Some(json!({"channels": ["eu"], "throttleRate": 10})),
        )
        .await;
    assert_eq!(
        (body["channels"].clone(), body["throttleRate"].clone()),
        (json!(["eu"]), json!(10))
    );
    let (_, body) = app
        .call(
            "PATCH",
            "/api/v1/app/ws_crud/endpoint/main",
            Some(json!({"channels": null})),
        )
        .await;
    assert!(body["channels"].is_null(), "null clears a filter");
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/app/ws_crud/endpoint/{id}"),
            Some(json!({"url": "https://example.com/new", "uid": "main"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["url"].clone(),
            body["disabled"].clone(),
            body["description"].clone()
        ),
        (json!("https://example.com/new"), json!(false), json!(""))
    );
    let (status, _) = app
        .call(
            "PUT",
            "/api/v1/app/ws_crud/endpoint/other",
            Some(json!({"url": "https://example.com/other", "uid": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = app.get("/api/v1/app/ws_crud/endpoint").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.call("DELETE", "/api/v1/app/ws_crud/endpoint/main", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/app/ws_crud/endpoint/main").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call("DELETE", "/api/v1/app/ws_crud/endpoint/main", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call("PATCH", "/api/v1/app/ws_crud/endpoint/main", Some(json!({})))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn endpoint_list_is_newest_first_and_pages() {
    let app = TestApp::spawn().await;
    app.create_app("ws_list").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        app.clock.advance(std::time::Duration::from_millis(1));
        ids.push(
            app.create_endpoint("ws_list", "/ok", json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (_, page) = app.get("/api/v1/app/ws_list/endpoint?limit=2").await;
    let got: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(page["done"], false);
    let (_, rest) = app
        .get(&format!("/api/v1/app/ws_list/endpoint?limit=2&iterator={}", ids[1]))
        .await;
    assert_eq!(rest["data"][0]["id"], ids[0].as_str());
    assert_eq!(rest["done"], true);
}

#[tokio::test]
async fn secret_is_generated_or_taken_from_input_and_readable_by_id_or_uid() {
    let app = TestApp::spawn().await;
    app.create_app("ws_secret").await;
    app.create_endpoint("ws_secret", "/ok", json!({"uid": "gen"})).await;
    let (status, body) = app.get("/api/v1/app/ws_secret/endpoint/gen/secret").await;
    assert_eq!(status, StatusCode::OK);
    let key = body["key"].as_str().unwrap();
    assert!(key.starts_with("whsec_"));
    assert_eq!(hookd_signing::Secret::parse(key).unwrap().as_bytes().len(), 24);
    let mine = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    app.create_endpoint("ws_secret", "/ok", json!({"uid": "given", "secret": mine}))
        .await;
    let (_, body) = app.get("/api/v1/app/ws_secret/endpoint/given/secret").await;
    assert_eq!(body["key"], mine);
    assert_eq!(
        app.get("/api/v1/app/ws_secret/endpoint/nope/secret").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn custom_headers_are_replaced_merged_and_sensitive_values_withheld() {
    let app = TestApp::spawn().await;
    app.create_app("ws_h").await;
    app.create_endpoint("ws_h", "/ok", json!({"uid": "main"})).await;
    let path = "/api/v1/app/ws_h/endpoint/main/headers";
    let (status, body) = app.get(path).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"headers": {}, "sensitive": []}))
    );
    let (status, _) = app
        .call(
            "PUT",
            path,
            Some(json!({"headers": {"X-Workspace": "ws_h", "Authorization": "Bearer s3cret"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = app.get(path).await;
    assert_eq!(
        body,
        json!({"headers": {"X-Workspace": "ws_h"}, "sensitive": ["Authorization"]})
    );
    let (status, _) = app
        .call(
            "PATCH",
            path,
            Some(json!({"headers": {"X-Extra": "1", "X-Workspace": null}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = app.get(path).await;
    assert_eq!(
        body,
        json!({"headers": {"X-Extra": "1"}, "sensitive": ["Authorization"]})
    );
    let (status, body) = app.call("PUT", path, Some(json!({"headers": {"Host": "evil"}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "headers", "Host"]));
    assert_eq!(
        app.get("/api/v1/app/ws_h/endpoint/nope/headers").await.0,
        StatusCode::NOT_FOUND
    );
}

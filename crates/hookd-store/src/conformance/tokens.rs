//! Conformance tests for [`TokenStore`]: API tokens found by their hash, listed, deleted and expired.

use super::*;

// ----- tokens -----

/// Tokens are stored whole (minus the secret) and found by hash; an unknown hash finds nothing.
pub async fn token_is_found_by_the_hash_of_its_secret(store: &dyn Store) {
    let mut g = Gen::new();
    let admin = TokenRecord {
        id: g.id(IdKind::Token, at(0)),
        hash: "a".repeat(64),
        env: Live,
        app_id: None,
        description: "admin".to_string(),
        created_at: at(0),
        expires_at: None,
    };
    let scoped = TokenRecord {
        id: g.id(IdKind::Token, at(1)),
        hash: "b".repeat(64),
        env: Test,
        app_id: Some(g.id(IdKind::Application, at(1))),
        description: "one app".to_string(),
        created_at: at(1),
        expires_at: Some(at(3600)),
    };
    store.create_token(&admin).await.unwrap();
    store.create_token(&scoped).await.unwrap();

    assert_eq!(store.find_token(&admin.hash).await.unwrap(), Some(admin));
    assert_eq!(store.find_token(&scoped.hash).await.unwrap(), Some(scoped));
    assert_eq!(store.find_token(&"c".repeat(64)).await.unwrap(), None);
}

/// Tokens list oldest first; deleting removes one; expiring an application's tokens moves only
/// its later-or-unset expiries earlier.
pub async fn tokens_list_delete_and_expire_by_application(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.id(IdKind::Application, at(0));
    let token = |g: &mut Gen, n: i64, app_id: Option<&str>, expires: Option<i64>| TokenRecord {
        id: g.id(IdKind::Token, at(n)),
        hash: format!("{n:064}"),
        env: Live,
        app_id: app_id.map(str::to_string),
        description: format!("token {n}"),
        created_at: at(n),
        expires_at: expires.map(at),
    };
    let admin = token(&mut g, 1, None, None);
    let portal_open = token(&mut g, 2, Some(&app), None);
    let portal_late = token(&mut g, 3, Some(&app), Some(10_000));
    let portal_soon = token(&mut g, 4, Some(&app), Some(50));
    let other_app = token(&mut g, 5, Some("app_other"), None);
    for t in [&admin, &portal_open, &portal_late, &portal_soon, &other_app] {
        store.create_token(t).await.unwrap();
    }
    let ids: Vec<String> = store.list_tokens().await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        [&admin, &portal_open, &portal_late, &portal_soon, &other_app].map(|t| t.id.clone())
    );

    let expiry = |h: String| async move { store.find_token(&h).await.unwrap().unwrap().expires_at };
    let named = vec![portal_late.description.clone(), other_app.description.clone()];
    assert_eq!(
        store.expire_app_tokens(&app, Some(&named), at(200)).await.unwrap(),
        1,
        "only the named token of the application"
    );
    assert_eq!(expiry(portal_late.hash.clone()).await, Some(at(200)));
    assert_eq!(expiry(portal_open.hash.clone()).await, None);
    assert_eq!(
        expiry(other_app.hash.clone()).await,
        None,
        "a name of another application's token does not reach it"
    );

    assert_eq!(store.expire_app_tokens(&app, None, at(100)).await.unwrap(), 2);
    assert_eq!(expiry(portal_open.hash.clone()).await, Some(at(100)));
    assert_eq!(expiry(portal_late.hash.clone()).await, Some(at(100)));
    assert_eq!(
        expiry(portal_soon.hash.clone()).await,
        Some(at(50)),
        "an earlier expiry stays"
    );
    assert_eq!(expiry(other_app.hash.clone()).await, None);
    assert_eq!(expiry(admin.hash.clone()).await, None);

    assert_eq!(
        store.get_token(&admin.id).await.unwrap().as_ref(),
        Some(&admin),
        "by id"
    );
    assert!(store.delete_token(&admin.id).await.unwrap());
    assert!(!store.delete_token(&admin.id).await.unwrap());
    assert_eq!(store.find_token(&admin.hash).await.unwrap(), None);
    assert_eq!(store.get_token(&admin.id).await.unwrap(), None);

    // Expired rows are deleted; the others stay.
    assert_eq!(
        store.delete_expired_tokens(at(60)).await.unwrap(),
        1,
        "the one that expired at 50"
    );
    assert_eq!(store.find_token(&portal_soon.hash).await.unwrap(), None);
    assert!(
        store.find_token(&portal_late.hash).await.unwrap().is_some(),
        "expires at 100, later"
    );
    assert!(
        store.find_token(&other_app.hash).await.unwrap().is_some(),
        "never expires"
    );
    assert_eq!(store.list_tokens().await.unwrap().len(), 3);
}

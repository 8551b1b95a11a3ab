//! Conformance tests for [`SessionStore`]: dashboard and portal sessions found by the hash of
//! their secret until they expire, bounded per group, ended by sign-out, `expire-all` and the
//! application's deletion.

use crate::SessionRecord;

use super::*;

impl Gen {
    /// A session of `app_id` (`None`: an operator) created at `created` and expiring at
    /// `expires`, with a hash unique to it.
    fn session(&mut self, env: Environment, app_id: Option<&str>, created: i64, expires: i64) -> SessionRecord {
        self.serial += 1;
        SessionRecord {
            id: self.id(IdKind::Session, at(created)),
            hash: format!("{:064x}", self.serial),
            env,
            app_id: app_id.map(str::to_string),
            capabilities: if app_id.is_some() {
                strings(&["ViewBase", "CreateAttempts"])
            } else {
                Vec::new()
            },
            read_only: app_id.is_some(),
            portal_session: app_id.map(|_| format!("link-{}", self.serial)),
            created_at: at(created),
            expires_at: at(expires),
        }
    }
}

/// A session reads back whole by the hash of its secret, only until it expires, and not after
/// it was deleted.
pub async fn session_is_found_by_its_hash_until_it_expires_or_is_deleted(store: &dyn Store) {
    let mut g = Gen::new();
    let operator = g.session(Live, None, 0, 100);
    store.create_session(&operator, 10).await.unwrap();
    let found = store.find_session(&operator.hash, at(99)).await.unwrap();
    assert_eq!(found.as_ref(), Some(&operator));
    assert_eq!(
        store.find_session(&operator.hash, at(100)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.find_session("0".repeat(64).as_str(), at(1)).await.unwrap(), None);

    let (app, _) = app_with_endpoint(store, &mut g).await;
    let portal = g.session(Live, Some(&app.id), 1, 100);
    store.create_session(&portal, 10).await.unwrap();
    let found = store.find_session(&portal.hash, at(2)).await.unwrap();
    assert_eq!(
        found,
        Some(portal.clone()),
        "capabilities, read-only and link round trip"
    );

    assert!(store.delete_session(&portal.id).await.unwrap());
    assert!(!store.delete_session(&portal.id).await.unwrap(), "deleted once");
    assert_eq!(store.find_session(&portal.hash, at(2)).await.unwrap(), None);
}

/// Creating a session keeps only the newest `keep` of its group (an application's portal
/// sessions, or one environment's operators); other groups are left alone.
pub async fn sessions_beyond_their_groups_keep_are_deleted_oldest_first(store: &dyn Store) {
    let mut g = Gen::new();
    let app_a = g.app(Live, Some("a"), at(0));
    let app_b = g.app(Live, Some("b"), at(0));
    store.create_application(&app_a).await.unwrap();
    store.create_application(&app_b).await.unwrap();
    let b = g.session(Live, Some(&app_b.id), 0, 1_000);
    let sandbox_operator = g.session(Test, None, 0, 1_000);
    store.create_session(&b, 2).await.unwrap();
    store.create_session(&sandbox_operator, 2).await.unwrap();

    let operators: Vec<SessionRecord> = (1..=3).map(|t| g.session(Live, None, t, 1_000)).collect();
    let portals: Vec<SessionRecord> = (1..=3).map(|t| g.session(Live, Some(&app_a.id), t, 1_000)).collect();
    for s in operators.iter().chain(&portals) {
        store.create_session(s, 2).await.unwrap();
    }
    let live = |s: &SessionRecord| {
        let hash = s.hash.clone();
        async move { store.find_session(&hash, at(10)).await.unwrap().is_some() }
    };
    assert!(!live(&operators[0]).await, "the oldest operator session made room");
    assert!(live(&operators[1]).await && live(&operators[2]).await);
    assert!(
        !live(&portals[0]).await,
        "the oldest portal session of the application made room"
    );
    assert!(live(&portals[1]).await && live(&portals[2]).await);
    assert!(live(&b).await, "another application's sessions are not its group");
    assert!(
        live(&sandbox_operator).await,
        "the other environment's operators are not its group"
    );
}

/// `expire-all` ends an application's portal sessions: those opened from the named links, or
/// all of them; other applications' sessions and operators' are untouched.
pub async fn expire_all_ends_an_applications_portal_sessions_or_those_of_named_links(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let (other, _) = app_with_endpoint(store, &mut g).await;
    let first = g.session(Live, Some(&app.id), 0, 1_000);
    let second = g.session(Live, Some(&app.id), 1, 1_000);
    let elsewhere = g.session(Live, Some(&other.id), 2, 1_000);
    let operator = g.session(Live, None, 3, 1_000);
    for s in [&first, &second, &elsewhere, &operator] {
        store.create_session(s, 10).await.unwrap();
    }
    let named = [first.portal_session.clone().unwrap()];
    assert_eq!(
        store.expire_app_sessions(&app.id, Some(&named), at(10)).await.unwrap(),
        1
    );
    assert_eq!(store.find_session(&first.hash, at(11)).await.unwrap(), None);
    assert!(store.find_session(&second.hash, at(11)).await.unwrap().is_some());

    assert_eq!(store.expire_app_sessions(&app.id, None, at(20)).await.unwrap(), 1);
    assert_eq!(store.find_session(&second.hash, at(21)).await.unwrap(), None);
    assert!(
        store.find_session(&second.hash, at(19)).await.unwrap().is_some(),
        "ended at the time given"
    );
    assert!(store.find_session(&elsewhere.hash, at(21)).await.unwrap().is_some());
    assert!(store.find_session(&operator.hash, at(21)).await.unwrap().is_some());
}

/// Expired sessions are deleted in batches of at most `limit`; live ones stay.
pub async fn expired_sessions_are_deleted_in_batches(store: &dyn Store) {
    let mut g = Gen::new();
    let expired: Vec<SessionRecord> = (0..3).map(|t| g.session(Live, None, t, 10 + t)).collect();
    let live = g.session(Live, None, 5, 1_000);
    for s in expired.iter().chain([&live]) {
        store.create_session(s, 10).await.unwrap();
    }
    assert_eq!(store.delete_expired_sessions(at(100), 2).await.unwrap(), 2);
    assert_eq!(store.delete_expired_sessions(at(100), 2).await.unwrap(), 1);
    assert_eq!(store.delete_expired_sessions(at(100), 2).await.unwrap(), 0);
    assert!(store.find_session(&live.hash, at(100)).await.unwrap().is_some());
    let gone = expired.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    for id in gone {
        assert!(!store.delete_session(&id).await.unwrap(), "{id} was deleted");
    }
}

/// Deleting an application ends its portal sessions with it.
pub async fn deleting_an_application_ends_its_portal_sessions(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let portal = g.session(Live, Some(&app.id), 0, 1_000);
    store.create_session(&portal, 10).await.unwrap();
    store.delete_application(app.env, &app.id).await.unwrap();
    assert_eq!(store.find_session(&portal.hash, at(1)).await.unwrap(), None);
    assert!(!store.delete_session(&portal.id).await.unwrap(), "its row is gone");
}

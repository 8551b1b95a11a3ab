//! Conformance tests for [`CatalogStore`]: applications, endpoints and event types, and what deleting
//! an application takes with it.

use hookd_core::model::OldSecret;

use super::*;

// ----- applications -----

/// An application reads back equal by its id and by its uid; unknown keys find nothing.
pub async fn application_is_found_by_id_and_by_uid(store: &dyn Store) {
    let mut g = Gen::new();
    let mut app = g.app(Live, Some("acme"), at(0));
    app.throttle_rate = Some(20);
    let anonymous = g.app(Live, None, at(1));
    store.create_application(&app).await.unwrap();
    store.create_application(&anonymous).await.unwrap();
    let never_stored = g.id(IdKind::Application, at(2));

    let get = |key: String| async move { store.get_application(Live, &key).await.unwrap() };
    assert_eq!(get(app.id.clone()).await, Some(app.clone()));
    assert_eq!(get("acme".into()).await, Some(app));
    assert_eq!(get(anonymous.id.clone()).await, Some(anonymous));
    assert_eq!(get("globex".into()).await, None);
    assert_eq!(get(never_stored).await, None);
}

/// A uid is unique within an environment, not across environments.
pub async fn application_uid_taken_in_the_environment_is_a_conflict(store: &dyn Store) {
    let mut g = Gen::new();
    let live = g.app(Live, Some("acme"), at(0));
    store.create_application(&live).await.unwrap();

    let clash = g.app(Live, Some("acme"), at(1));
    assert_conflict(store.create_application(&clash).await, "same uid and environment");
    assert_eq!(store.get_application(Live, &clash.id).await.unwrap(), None);
    assert_conflict(store.create_application(&live).await, "same id twice");

    let sandbox = g.app(Test, Some("acme"), at(2));
    store
        .create_application(&sandbox)
        .await
        .expect("same uid in the other environment");
    assert_eq!(store.get_application(Test, "acme").await.unwrap(), Some(sandbox));
    assert_eq!(store.get_application(Live, "acme").await.unwrap(), Some(live));
}

/// An application created in Live cannot be read, listed or deleted through Test.
pub async fn applications_are_invisible_from_the_other_environment(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, Some("acme"), at(0));
    store.create_application(&app).await.unwrap();

    assert_eq!(store.get_application(Test, &app.id).await.unwrap(), None);
    assert_eq!(store.get_application(Test, "acme").await.unwrap(), None);
    let in_test = store.list_applications(Test, &first(50, ASC)).await.unwrap();
    assert_eq!(shape(&in_test), (vec![], false));
    assert_not_found(store.delete_application(Test, &app.id).await, "delete through Test");

    let in_live = store.list_applications(Live, &first(50, ASC)).await.unwrap();
    assert_eq!(in_live.items, vec![app.clone()]);
    assert_eq!(store.get_application(Live, &app.id).await.unwrap(), Some(app));
}

/// Update replaces uid, name, metadata, throttle rate and update time; the old uid stops
/// resolving. Unknown ids are `NotFound`, a uid held by another application is `Conflict`.
pub async fn application_update_replaces_every_mutable_field(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, Some("acme"), at(0));
    let other = g.app(Live, Some("globex"), at(1));
    store.create_application(&app).await.unwrap();
    store.create_application(&other).await.unwrap();
    let get = |key: String| async move { store.get_application(Live, &key).await.unwrap() };

    let changed = Application {
        uid: Some("acme-corp".to_string()),
        name: "Acme Corporation".to_string(),
        metadata: BTreeMap::from([("region".to_string(), "eu".to_string())]),
        throttle_rate: Some(5),
        updated_at: at(100),
        ..app.clone()
    };
    store.update_application(&changed).await.expect("update");
    assert_eq!(get(app.id.clone()).await, Some(changed.clone()));
    assert_eq!(get("acme-corp".into()).await, Some(changed.clone()));
    assert_eq!(get("acme".into()).await, None);

    let mut cleared = changed;
    (cleared.uid, cleared.throttle_rate, cleared.updated_at) = (None, None, at(101));
    store.update_application(&cleared).await.expect("clear uid");
    assert_eq!(get(app.id.clone()).await, Some(cleared.clone()));

    let mut stealing = cleared.clone();
    stealing.uid = Some("globex".to_string());
    assert_conflict(store.update_application(&stealing).await, "update to a taken uid");
    assert_eq!(get(app.id.clone()).await, Some(cleared));

    let ghost = g.app(Live, Some("ghost"), at(3));
    assert_not_found(store.update_application(&ghost).await, "update of a missing app");
    assert_eq!(get("ghost".into()).await, None);
}

/// Delete removes the application and frees its uid; deleting again is `NotFound`.
pub async fn application_delete_removes_it_and_a_second_delete_is_not_found(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, Some("acme"), at(0));
    let kept = g.app(Live, Some("globex"), at(1));
    store.create_application(&app).await.unwrap();
    store.create_application(&kept).await.unwrap();

    store.delete_application(Live, &app.id).await.expect("delete");
    assert_eq!(store.get_application(Live, &app.id).await.unwrap(), None);
    assert_eq!(store.get_application(Live, "acme").await.unwrap(), None);
    assert_not_found(store.delete_application(Live, &app.id).await, "second delete");
    let left = store.list_applications(Live, &first(50, ASC)).await.unwrap();
    assert_eq!(left.items, vec![kept]);

    let reuse = g.app(Live, Some("acme"), at(2));
    store
        .create_application(&reuse)
        .await
        .expect("a deleted application's uid is free");
}

/// Application lists are keyset pages by id (creation order), oldest or newest first, with
/// `has_more` set exactly when another page follows.
pub async fn applications_page_by_id_in_both_orders(store: &dyn Store) {
    let a = five_apps(store).await;
    let list = |page| async move { shape(&store.list_applications(Live, &page).await.unwrap()) };

    assert_eq!(list(first(2, ASC)).await, (pick(&a, &[0, 1]), true));
    assert_eq!(list(after(&a[1].id, 2, ASC)).await, (pick(&a, &[2, 3]), true));
    assert_eq!(list(after(&a[3].id, 2, ASC)).await, (pick(&a, &[4]), false));
    assert_eq!(list(after(&a[4].id, 2, ASC)).await, (vec![], false));

    assert_eq!(list(first(2, DESC)).await, (pick(&a, &[4, 3]), true));
    assert_eq!(list(after(&a[3].id, 2, DESC)).await, (pick(&a, &[2, 1]), true));
    assert_eq!(list(after(&a[1].id, 2, DESC)).await, (pick(&a, &[0]), false));

    assert_eq!(list(first(5, ASC)).await, (pick(&a, &[0, 1, 2, 3, 4]), false));
    assert_eq!(list(first(6, DESC)).await, (pick(&a, &[4, 3, 2, 1, 0]), false));
}

/// A backwards cursor (from the first item of a page) returns the page before it, still in list
/// order, with `has_more` telling whether pages lie further back.
pub async fn backwards_cursor_returns_the_previous_page_in_list_order(store: &dyn Store) {
    let a = five_apps(store).await;
    let list = |page| async move { shape(&store.list_applications(Live, &page).await.unwrap()) };

    // Oldest first, the pages are [0 1] [2 3] [4].
    assert_eq!(list(before(&a[4].id, 2, ASC)).await, (pick(&a, &[2, 3]), true));
    assert_eq!(list(before(&a[2].id, 2, ASC)).await, (pick(&a, &[0, 1]), false));
    assert_eq!(list(before(&a[0].id, 2, ASC)).await, (vec![], false));

    // Newest first, the pages are [4 3] [2 1] [0].
    assert_eq!(list(before(&a[0].id, 2, DESC)).await, (pick(&a, &[2, 1]), true));
    assert_eq!(list(before(&a[2].id, 2, DESC)).await, (pick(&a, &[4, 3]), false));
}

/// Deleting an application takes its endpoints, messages, deliveries and attempts with it and
/// leaves other applications untouched.
pub async fn deleting_an_application_removes_its_endpoints_messages_deliveries_and_attempts(store: &dyn Store) {
    let mut g = Gen::new();
    let (doomed, ep) = app_with_endpoint(store, &mut g).await;
    let (msg, d) = send(store, &mut g, &ep, 1).await;
    let (_, pending) = send(store, &mut g, &ep, 2).await;
    let outcome = g.outcome(&d, at(3), 200, Success, None);
    store.record_attempts(slice::from_ref(&outcome)).await.unwrap();
    let kept = g.app(Live, None, at(4));
    store.create_application(&kept).await.unwrap();
    let kept_ep = g.endpoint(&kept.id, None, at(4));
    store.create_endpoint(&kept_ep).await.unwrap();
    let (kept_msg, kept_d) = send(store, &mut g, &kept_ep, 5).await;

    store.delete_application(Live, &doomed.id).await.expect("delete");

    assert_eq!(store.get_application(Live, &doomed.id).await.unwrap(), None);
    assert_eq!(store.get_endpoint(&doomed.id, &ep.id).await.unwrap(), None);
    assert_eq!(store.all_endpoints(&doomed.id).await.unwrap(), Vec::<Endpoint>::new());
    assert_eq!(store.get_message(&doomed.id, &msg.id).await.unwrap(), None);
    let unfiltered = MessageFilter::default();
    let msgs = store
        .list_messages(&doomed.id, &unfiltered, &everything())
        .await
        .unwrap();
    assert_eq!(shape(&msgs), (vec![], false));
    assert_eq!(store.get_delivery(&msg.id, &ep.id).await.unwrap(), None);
    let deliveries = store.list_endpoint_deliveries(&ep.id, &unfiltered, &everything()).await;
    assert_eq!(shape(&deliveries.unwrap()), (vec![], false));
    assert_eq!(store.get_attempt(&msg.id, &outcome.attempt.id).await.unwrap(), None);
    let of_doomed = AttemptFilter {
        app_id: doomed.id.clone(),
        ..Default::default()
    };
    let attempts = store.list_attempts(&of_doomed, &everything()).await.unwrap();
    assert_eq!(shape(&attempts), (vec![], false));

    let claims = claim(store, 100, 200).await;
    assert!(
        !claims.contains(&pending.id),
        "a deleted application's delivery was claimed"
    );
    assert_eq!(claims, vec![kept_d.id]);
    let found = store.get_message(&kept.id, &kept_msg.id).await.unwrap();
    assert_eq!(found, Some(kept_msg));
    assert_eq!(store.all_endpoints(&kept.id).await.unwrap(), vec![kept_ep]);
}

// ----- endpoints -----

/// An endpoint reads back equal (filters, headers, metadata included) by id and by uid, but only
/// through its own application.
pub async fn endpoint_is_found_by_id_and_by_uid_within_its_application(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();

    let ep = Endpoint {
        description: "orders".to_string(),
        event_types: Some(strings(&["user.created", "invoice.paid"])),
        channels: Some(strings(&["eu"])),
        throttle_rate: Some(10),
        metadata: BTreeMap::from([("team".to_string(), "billing".to_string())]),
        headers: BTreeMap::from([("X-Api-Key".to_string(), "k1".to_string())]),
        ..g.endpoint(&app.id, Some("orders"), at(2))
    };
    store.create_endpoint(&ep).await.unwrap();

    let get = |app_id: &str, key: &str| {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        async move { store.get_endpoint(&app_id, &key).await.unwrap() }
    };
    assert_eq!(get(&app.id, &ep.id).await, Some(ep.clone()));
    assert_eq!(get(&app.id, "orders").await, Some(ep.clone()));
    assert_eq!(get(&other_app.id, &ep.id).await, None);
    assert_eq!(get(&other_app.id, "orders").await, None);
    assert_eq!(get(&app.id, "billing").await, None);
}

/// An endpoint uid is unique within its application; another application may reuse it.
pub async fn endpoint_uid_is_unique_per_application(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();

    let taken = g.endpoint(&app.id, Some("orders"), at(2));
    store.create_endpoint(&taken).await.unwrap();
    let clash = g.endpoint(&app.id, Some("orders"), at(3));
    assert_conflict(store.create_endpoint(&clash).await, "same uid, same application");
    assert_eq!(store.get_endpoint(&app.id, &clash.id).await.unwrap(), None);

    let elsewhere = g.endpoint(&other_app.id, Some("orders"), at(4));
    store
        .create_endpoint(&elsewhere)
        .await
        .expect("same uid in another application");
    let found = store.get_endpoint(&other_app.id, "orders").await.unwrap();
    assert_eq!(found, Some(elsewhere));
    assert_eq!(store.get_endpoint(&app.id, "orders").await.unwrap(), Some(taken));
}

/// Update replaces every mutable field, secret and headers included; unknown ids are
/// `NotFound`, a uid held by another endpoint of the application is `Conflict`.
pub async fn endpoint_update_replaces_every_mutable_field(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let sibling = g.endpoint(&app.id, Some("sibling"), at(1));
    store.create_endpoint(&sibling).await.unwrap();
    let get = |key: String| {
        let app_id = app.id.clone();
        async move { store.get_endpoint(&app_id, &key).await.unwrap() }
    };

    let changed = Endpoint {
        uid: Some("orders".to_string()),
        url: "https://new.example/in".to_string(),
        description: "moved".to_string(),
        disabled: true,
        event_types: Some(strings(&["invoice.paid"])),
        channels: Some(strings(&["us", "eu"])),
        throttle_rate: Some(3),
        metadata: BTreeMap::from([("owner".to_string(), "ops".to_string())]),
        secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_string(),
        headers: BTreeMap::from([("Authorization".to_string(), "Bearer x".to_string())]),
        updated_at: at(50),
        ..ep.clone()
    };
    store.update_endpoint(&changed).await.expect("update");
    assert_eq!(get(ep.id.clone()).await, Some(changed.clone()));
    assert_eq!(get("orders".into()).await, Some(changed.clone()));

    let mut cleared = changed;
    (cleared.uid, cleared.event_types, cleared.channels) = (None, None, None);
    (cleared.headers, cleared.updated_at) = (BTreeMap::new(), at(51));
    store.update_endpoint(&cleared).await.expect("clear optional fields");
    assert_eq!(get(ep.id.clone()).await, Some(cleared.clone()));
    assert_eq!(get("orders".into()).await, None);

    let mut stealing = cleared.clone();
    stealing.uid = Some("sibling".to_string());
    assert_conflict(store.update_endpoint(&stealing).await, "update to a sibling's uid");
    assert_eq!(get(ep.id.clone()).await, Some(cleared));

    let ghost = g.endpoint(&app.id, None, at(3));
    assert_not_found(store.update_endpoint(&ghost).await, "update of a missing endpoint");
}

/// Rotated-out secrets (in order, with their expiry) and the failing-since mark are stored on
/// create and replaced on update, like every other field, and come back from every read.
pub async fn endpoint_old_secrets_and_failing_since_round_trip(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let old = |key: &str, expires: i64| OldSecret {
        key: key.to_string(),
        expires_at: at(expires),
    };
    let ep = Endpoint {
        old_secrets: vec![
            old("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", 7200),
            old("whsk_SQO0GYi3mYAuE6zvhVeWFYmCxV5vnl4P", 3600),
        ],
        failing_since: Some(at(5)),
        ..g.endpoint(&app.id, Some("rotated"), at(10))
    };
    store.create_endpoint(&ep).await.expect("create");
    let get = |key: String| {
        let app_id = app.id.clone();
        async move { store.get_endpoint(&app_id, &key).await.unwrap() }
    };
    let listed = |id: String| {
        let app_id = app.id.clone();
        async move {
            let all = store.all_endpoints(&app_id).await.unwrap();
            all.into_iter().find(|e| e.id == id)
        }
    };
    assert_eq!(get(ep.id.clone()).await, Some(ep.clone()));
    assert_eq!(get("rotated".into()).await, Some(ep.clone()));
    assert_eq!(listed(ep.id.clone()).await, Some(ep.clone()));

    let rotated_again = Endpoint {
        old_secrets: vec![old("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 9000)],
        failing_since: None,
        updated_at: at(20),
        ..ep.clone()
    };
    store.update_endpoint(&rotated_again).await.expect("update");
    assert_eq!(get(ep.id.clone()).await, Some(rotated_again.clone()));
    assert_eq!(listed(ep.id.clone()).await, Some(rotated_again.clone()));

    let expired = Endpoint {
        old_secrets: Vec::new(),
        failing_since: Some(at(30)),
        updated_at: at(31),
        ..rotated_again
    };
    store.update_endpoint(&expired).await.expect("update");
    assert_eq!(get(ep.id.clone()).await, Some(expired.clone()));
    let page = store.list_endpoints(&app.id, &first(50, ASC)).await.unwrap();
    assert!(page.items.contains(&expired), "{:?}", page.items);
}

/// Deleting an endpoint removes it and stops its pending deliveries; deleting again, or through
/// another application, is `NotFound`.
pub async fn endpoint_delete_removes_it_and_stops_its_deliveries(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let other_app = g.app(Live, None, at(1));
    store.create_application(&other_app).await.unwrap();
    let kept = g.endpoint(&app.id, None, at(1));
    store.create_endpoint(&kept).await.unwrap();
    let msg = g.message(&app.id, "user.created", at(2));
    let doomed = g.delivery(&msg, &ep.id, at(2));
    let survivor = g.delivery(&msg, &kept.id, at(2));
    store.create_message(&msg, &[doomed, survivor.clone()]).await.unwrap();

    let wrong_app = store.delete_endpoint(&other_app.id, &ep.id).await;
    assert_not_found(wrong_app, "delete through another application");
    store.delete_endpoint(&app.id, &ep.id).await.expect("delete");
    assert_eq!(store.get_endpoint(&app.id, &ep.id).await.unwrap(), None);
    assert_not_found(store.delete_endpoint(&app.id, &ep.id).await, "second delete");

    assert_eq!(claim(store, 10, 40).await, vec![survivor.id]);
    assert_eq!(store.all_endpoints(&app.id).await.unwrap(), vec![kept]);
}

/// Endpoint lists are keyset pages by id in both orders; `all_endpoints` returns every endpoint
/// of the application and no other.
pub async fn endpoints_page_by_id_and_all_endpoints_lists_only_the_application(store: &dyn Store) {
    let mut g = Gen::new();
    let app = g.app(Live, None, at(0));
    let other_app = g.app(Live, None, at(0));
    store.create_application(&app).await.unwrap();
    store.create_application(&other_app).await.unwrap();
    let mut e = Vec::new();
    for i in 0..3 {
        e.push(g.endpoint(&app.id, None, at(i + 1)));
        store.create_endpoint(&e[i as usize]).await.unwrap();
    }
    let foreign = g.endpoint(&other_app.id, None, at(2));
    store.create_endpoint(&foreign).await.unwrap();
    let list = |page| {
        let app_id = app.id.clone();
        async move { store.list_endpoints(&app_id, &page).await.unwrap() }
    };

    assert_eq!(shape(&list(first(2, ASC)).await), (pick(&e, &[0, 1]), true));
    assert_eq!(shape(&list(after(&e[1].id, 2, ASC)).await), (pick(&e, &[2]), false));
    assert_eq!(shape(&list(before(&e[2].id, 2, ASC)).await), (pick(&e, &[0, 1]), false));
    let newest = list(first(50, DESC)).await;
    assert_eq!(newest.items, vec![e[2].clone(), e[1].clone(), e[0].clone()]);
    assert!(!newest.has_more);

    let mut all = store.all_endpoints(&app.id).await.unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, e);
}

// ----- event types -----

/// Upsert inserts a new name and replaces every field of an existing one.
pub async fn event_type_upsert_inserts_then_replaces_by_name(store: &dyn Store) {
    let created = event_type(Live, "user.created", false, at(0));
    store.upsert_event_type(&created).await.expect("insert");
    let found = store.get_event_type(Live, "user.created").await.unwrap();
    assert_eq!(found, Some(created.clone()));

    let replaced = EventType {
        description: "A user signed up".to_string(),
        archived: true,
        deprecated: true,
        feature_flag: Some("beta".to_string()),
        group_name: Some("user".to_string()),
        schemas: Some(serde_json::json!({"1": {"type": "object", "required": ["id"]}})),
        updated_at: at(60),
        ..created
    };
    store.upsert_event_type(&replaced).await.expect("replace");
    let found = store.get_event_type(Live, "user.created").await.unwrap();
    assert_eq!(found, Some(replaced));
    assert_eq!(store.get_event_type(Live, "user.deleted").await.unwrap(), None);
}

/// The same name lives independently in each environment.
pub async fn event_types_are_scoped_by_environment(store: &dyn Store) {
    let live = event_type(Live, "user.created", false, at(0));
    store.upsert_event_type(&live).await.unwrap();
    assert_eq!(store.get_event_type(Test, "user.created").await.unwrap(), None);
    let in_test = store.list_event_types(Test, true, &first(50, ASC)).await.unwrap();
    assert_eq!(shape(&in_test), (vec![], false));
    let delete = store.delete_event_type(Test, "user.created").await;
    assert_not_found(delete, "delete through Test");

    let mut test = event_type(Test, "user.created", false, at(1));
    test.description = "sandbox copy".to_string();
    store.upsert_event_type(&test).await.unwrap();
    assert_eq!(store.get_event_type(Test, "user.created").await.unwrap(), Some(test));
    assert_eq!(store.get_event_type(Live, "user.created").await.unwrap(), Some(live));
}

/// Event types list by name in both orders with keyset cursors; archived ones only on request.
pub async fn event_types_list_by_name_and_hide_archived_unless_asked(store: &dyn Store) {
    let a = event_type(Live, "a.first", false, at(0));
    let b = event_type(Live, "b.archived", true, at(1));
    let c = event_type(Live, "c.third", false, at(2));
    for et in [&c, &a, &b] {
        store.upsert_event_type(et).await.unwrap();
    }
    let ets = [a.clone(), b.clone(), c.clone()];
    let list =
        |archived: bool, page: PageRequest| async move { store.list_event_types(Live, archived, &page).await.unwrap() };

    let visible = list(false, first(50, ASC)).await;
    assert_eq!((visible.items, visible.has_more), (vec![a, c], false));
    let all = list(true, first(50, ASC)).await;
    assert_eq!(all.items, ets);

    let page = list(true, first(2, ASC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[0, 1]), true));
    let page = list(true, after("b.archived", 2, ASC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[2]), false));
    let page = list(true, before("c.third", 1, ASC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[1]), true));
    let page = list(false, first(1, DESC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[2]), true));
    let page = list(false, after("c.third", 1, DESC)).await;
    assert_eq!(shape(&page), (pick(&ets, &[0]), false));
}

/// Deleting an event type removes it; deleting again is `NotFound`.
pub async fn event_type_delete_removes_it_for_good(store: &dyn Store) {
    let et = event_type(Live, "user.created", false, at(0));
    store.upsert_event_type(&et).await.unwrap();
    store.delete_event_type(Live, "user.created").await.expect("delete");
    assert_eq!(store.get_event_type(Live, "user.created").await.unwrap(), None);
    let listed = store.list_event_types(Live, true, &first(50, ASC)).await.unwrap();
    assert_eq!(shape(&listed), (vec![], false));
    let again = store.delete_event_type(Live, "user.created").await;
    assert_not_found(again, "second delete");
}

/// Applications are found by a piece of their name in any case, newest first, within their
/// environment; `%` and `_` are plain characters.
pub async fn applications_are_found_by_part_of_their_name(store: &dyn Store) {
    let mut g = Gen::new();
    let mut named = |name: &str, env, t| {
        let mut a = g.app(env, None, at(t));
        a.name = name.to_string();
        a
    };
    let shop = named("Acme Shop", Live, 1);
    let labs = named("acme_labs", Live, 2);
    let widgets = named("Widgets 100%", Live, 3);
    let sandbox = named("Acme sandbox", Test, 4);
    for a in [&shop, &labs, &widgets, &sandbox] {
        store.create_application(a).await.unwrap();
    }
    let find = |text: &'static str, limit| async move {
        let found = store.search_applications(Live, text, limit).await.unwrap();
        found.into_iter().map(|a| a.name).collect::<Vec<_>>()
    };
    assert_eq!(find("ACME", 10).await, ["acme_labs", "Acme Shop"]);
    assert_eq!(find("ACME", 1).await, ["acme_labs"]);
    assert_eq!(find("_", 10).await, ["acme_labs"], "an underscore matches only itself");
    assert_eq!(find("100%", 10).await, ["Widgets 100%"]);
    assert_eq!(
        find("%", 10).await,
        ["Widgets 100%"],
        "a percent sign matches only itself"
    );
    assert!(find("nothing", 10).await.is_empty());
}

/// The endpoints needing attention are the disabled and failing ones of the environment, the
/// longest-failing first, then the most recently changed.
pub async fn troubled_endpoints_are_the_failing_and_disabled_ones_longest_failing_first(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, healthy) = app_with_endpoint(store, &mut g).await;
    let sandbox_app = g.app(Test, None, at(0));
    store.create_application(&sandbox_app).await.unwrap();
    let mut made = |app_id: &str, disabled: bool, failing: Option<i64>, changed: i64| {
        let mut e = g.endpoint(app_id, None, at(0));
        e.disabled = disabled;
        e.failing_since = failing.map(at);
        e.updated_at = at(changed);
        e
    };
    let disabled_early = made(&app.id, true, None, 20);
    let disabled_late = made(&app.id, true, None, 30);
    let failing_late = made(&app.id, false, Some(10), 1);
    let failing_early = made(&app.id, true, Some(5), 1);
    let elsewhere = made(&sandbox_app.id, true, Some(1), 1);
    for e in [
        &disabled_early,
        &disabled_late,
        &failing_late,
        &failing_early,
        &elsewhere,
    ] {
        store.create_endpoint(e).await.unwrap();
        store.update_endpoint(e).await.unwrap();
    }
    let ids = |found: Vec<Endpoint>| found.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let found = store.troubled_endpoints(Live, 10).await.unwrap();
    assert_eq!(
        ids(found),
        [&failing_early, &failing_late, &disabled_late, &disabled_early].map(|e| e.id.clone()),
        "{} is healthy and {} is in the sandbox",
        healthy.id,
        elsewhere.id
    );
    assert_eq!(
        ids(store.troubled_endpoints(Live, 1).await.unwrap()),
        vec![failing_early.id.clone()]
    );
    let sandbox = store.troubled_endpoints(Test, 10).await.unwrap();
    assert_eq!(sandbox, vec![elsewhere.clone()], "whole, secrets opened");
}

//! Conformance tests for background tasks (recover, replay) and for what a restart does to the
//! ones left running.

use serde_json::json;

use crate::{TaskFilter, TaskRecord, TaskStatus};

use super::*;

const RECOVER: &str = "endpoint.recover";
const REPLAY: &str = "endpoint.replay";
const BULK_REPLAY: &str = "endpoint.bulk-replay";

impl Keyed for TaskRecord {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Gen {
    /// A task of `kind` on `app_id` in `status`, created (and last updated) at `created`.
    fn task(&mut self, app_id: &str, kind: &str, status: TaskStatus, created: DateTime<Utc>) -> TaskRecord {
        TaskRecord {
            id: self.id(IdKind::Task, created),
            app_id: app_id.to_string(),
            endpoint_id: None,
            kind: kind.to_string(),
            status,
            data: json!({"messagesSent": 0}),
            created_at: created,
            updated_at: created,
        }
    }
}

/// A task reads back equal (endpoint and nested progress data included) by its id, but only in
/// the environment of its application.
pub async fn task_is_found_by_id_only_in_its_applications_environment(store: &dyn Store) {
    let mut g = Gen::new();
    let (live_app, ep) = app_with_endpoint(store, &mut g).await;
    let test_app = g.app(Test, None, at(1));
    store.create_application(&test_app).await.unwrap();
    let live = TaskRecord {
        endpoint_id: Some(ep.id.clone()),
        data: json!({"messagesSent": 3, "window": {"since": "2027-01-15T08:00:00Z", "ids": [1, 2]}}),
        ..g.task(&live_app.id, REPLAY, TaskStatus::Running, at(2))
    };
    let test = g.task(&test_app.id, RECOVER, TaskStatus::Finished, at(3));
    store.create_task(&live).await.expect("create");
    store.create_task(&test).await.expect("create");
    let never_stored = g.id(IdKind::Task, at(4));

    assert_eq!(store.get_task(Live, &live.id).await.unwrap(), Some(live.clone()));
    assert_eq!(store.get_task(Test, &live.id).await.unwrap(), None);
    assert_eq!(store.get_task(Test, &test.id).await.unwrap(), Some(test.clone()));
    assert_eq!(store.get_task(Live, &test.id).await.unwrap(), None);
    assert_eq!(store.get_task(Live, &never_stored).await.unwrap(), None);
}

/// Updating a task replaces its status, data and update time and nothing else; an unknown id is
/// `NotFound` and creates nothing.
pub async fn task_update_replaces_status_data_and_update_time(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, ep) = app_with_endpoint(store, &mut g).await;
    let task = TaskRecord {
        endpoint_id: Some(ep.id.clone()),
        ..g.task(&app.id, RECOVER, TaskStatus::Running, at(10))
    };
    let bystander = g.task(&app.id, REPLAY, TaskStatus::Running, at(11));
    store.create_task(&task).await.unwrap();
    store.create_task(&bystander).await.unwrap();
    let get = |id: String| async move { store.get_task(Live, &id).await.unwrap() };

    let progress = json!({"messagesSent": 40});
    store
        .update_task(&task.id, TaskStatus::Running, &progress, at(20))
        .await
        .expect("update");
    let expected = TaskRecord {
        data: progress,
        updated_at: at(20),
        ..task.clone()
    };
    assert_eq!(get(task.id.clone()).await, Some(expected));

    let result = json!({"messagesSent": 52, "note": null});
    store
        .update_task(&task.id, TaskStatus::Finished, &result, at(30))
        .await
        .expect("update");
    let expected = TaskRecord {
        status: TaskStatus::Finished,
        data: result,
        updated_at: at(30),
        ..task.clone()
    };
    assert_eq!(get(task.id.clone()).await, Some(expected));
    assert_eq!(get(bystander.id.clone()).await, Some(bystander));

    let ghost = g.id(IdKind::Task, at(40));
    let result = store.update_task(&ghost, TaskStatus::Failed, &json!({}), at(40)).await;
    assert_not_found(result, "update of a missing task");
    assert_eq!(get(ghost).await, None);
}

/// Tasks list by id (newest first unless asked otherwise) in keyset pages, filtered by status
/// and by kind, and only those of the environment's applications.
pub async fn tasks_list_by_id_filtered_by_status_and_kind_in_pages(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let test_app = g.app(Test, None, at(0));
    store.create_application(&test_app).await.unwrap();
    let specs = [
        (RECOVER, TaskStatus::Running),
        (REPLAY, TaskStatus::Finished),
        (REPLAY, TaskStatus::Running),
        (BULK_REPLAY, TaskStatus::Failed),
        (REPLAY, TaskStatus::Running),
    ];
    let mut t = Vec::new();
    for (i, (kind, status)) in (0..).zip(specs) {
        let task = g.task(&app.id, kind, status, at(10 * i));
        store.create_task(&task).await.unwrap();
        t.push(task);
    }
    let sandboxed = g.task(&test_app.id, REPLAY, TaskStatus::Running, at(25));
    store.create_task(&sandboxed).await.unwrap();
    let list =
        |filter: TaskFilter, page: PageRequest| async move { store.list_tasks(Live, &filter, &page).await.unwrap() };
    let all = TaskFilter::default();
    let running = TaskFilter {
        status: Some(TaskStatus::Running),
        ..Default::default()
    };
    let replays = TaskFilter {
        kind: Some(REPLAY.to_string()),
        ..Default::default()
    };
    let running_replays = TaskFilter {
        status: Some(TaskStatus::Running),
        ..replays.clone()
    };

    let newest = list(all.clone(), everything()).await;
    assert_eq!(
        (newest.items, newest.has_more),
        (t.iter().rev().cloned().collect(), false)
    );
    assert_eq!(
        shape(&list(all.clone(), first(50, ASC)).await),
        (pick(&t, &[0, 1, 2, 3, 4]), false)
    );
    assert_eq!(
        shape(&list(all.clone(), first(2, DESC)).await),
        (pick(&t, &[4, 3]), true)
    );
    assert_eq!(
        shape(&list(all.clone(), after(&t[3].id, 2, DESC)).await),
        (pick(&t, &[2, 1]), true)
    );
    assert_eq!(
        shape(&list(all.clone(), after(&t[1].id, 2, DESC)).await),
        (pick(&t, &[0]), false)
    );

    assert_eq!(shape(&list(running, everything()).await), (pick(&t, &[4, 2, 0]), false));
    assert_eq!(shape(&list(replays, everything()).await), (pick(&t, &[4, 2, 1]), false));
    let page = list(running_replays.clone(), first(1, DESC)).await;
    assert_eq!(shape(&page), (pick(&t, &[4]), true));
    let page = list(running_replays, after(&t[4].id, 1, DESC)).await;
    assert_eq!(shape(&page), (pick(&t, &[2]), false));
    let unknown_kind = TaskFilter {
        kind: Some("endpoint.unknown".to_string()),
        ..Default::default()
    };
    assert_eq!(shape(&list(unknown_kind, everything()).await), (vec![], false));

    let in_test = store.list_tasks(Test, &all, &everything()).await.unwrap();
    assert_eq!((in_test.items, in_test.has_more), (vec![sandboxed], false));
}

/// After a restart of an embedded store, tasks the dead process left running (in every
/// environment) are failed with the reason in their data, their progress kept; finished and
/// failed tasks are left alone. Only leases count in the result. Embedded stores only: on a
/// shared one another node may be running those tasks.
pub async fn release_stale_leases_fails_tasks_left_running(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let test_app = g.app(Test, None, at(0));
    store.create_application(&test_app).await.unwrap();
    let interrupted = TaskRecord {
        data: json!({"messagesSent": 7}),
        ..g.task(&app.id, REPLAY, TaskStatus::Running, at(1))
    };
    let finished = TaskRecord {
        data: json!({"messagesSent": 12}),
        ..g.task(&app.id, REPLAY, TaskStatus::Finished, at(2))
    };
    let failed = TaskRecord {
        data: json!({"error": "endpoint deleted"}),
        ..g.task(&app.id, RECOVER, TaskStatus::Failed, at(3))
    };
    let sandboxed = g.task(&test_app.id, RECOVER, TaskStatus::Running, at(4));
    for task in [&interrupted, &finished, &failed, &sandboxed] {
        store.create_task(task).await.unwrap();
    }

    assert_eq!(store.release_stale_leases(at(0)).await.expect("release"), 0);

    for (env, before) in [(Live, &interrupted), (Test, &sandboxed)] {
        let after = store.get_task(env, &before.id).await.unwrap().expect("task");
        let same = |t: &TaskRecord| (t.id.clone(), t.app_id.clone(), t.kind.clone(), t.created_at);
        assert_eq!(same(&after), same(before));
        assert_eq!(after.status, TaskStatus::Failed, "{after:?}");
        let reason = after.data.get("error").and_then(|e| e.as_str()).unwrap_or_default();
        assert!(!reason.is_empty(), "no reason in {}", after.data);
        assert_eq!(after.data.get("messagesSent"), before.data.get("messagesSent"));
    }
    assert_eq!(store.get_task(Live, &finished.id).await.unwrap(), Some(finished));
    assert_eq!(store.get_task(Live, &failed.id).await.unwrap(), Some(failed));
}

/// A task still `running` whose progress was last saved before the cut-off (its node died) is
/// marked `failed` with the reason and its progress kept; recent and finished tasks are left.
pub async fn running_tasks_silent_since_before_the_cut_off_are_failed(store: &dyn Store) {
    let mut g = Gen::new();
    let (app, _) = app_with_endpoint(store, &mut g).await;
    let mut stale = g.task(&app.id, RECOVER, TaskStatus::Running, at(0));
    stale.data = json!({"messagesSent": 7});
    let fresh = g.task(&app.id, REPLAY, TaskStatus::Running, at(500));
    let done = g.task(&app.id, BULK_REPLAY, TaskStatus::Finished, at(0));
    for t in [&stale, &fresh, &done] {
        store.create_task(t).await.unwrap();
    }
    assert_eq!(store.fail_stale_tasks(at(300), at(600)).await.unwrap(), 1);
    let got = store.get_task(Live, &stale.id).await.unwrap().expect("task");
    assert_eq!(got.status, TaskStatus::Failed);
    assert_eq!(got.data["messagesSent"], json!(7), "progress kept");
    assert!(
        got.data["error"].as_str().is_some_and(|e| e.contains("stopped")),
        "{}",
        got.data
    );
    let fresh_now = store.get_task(Live, &fresh.id).await.unwrap().expect("task");
    assert_eq!(fresh_now.status, TaskStatus::Running);
    let done_now = store.get_task(Live, &done.id).await.unwrap().expect("task");
    assert_eq!(done_now.status, TaskStatus::Finished);
}

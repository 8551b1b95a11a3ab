//! Conformance tests for idempotency keys: claiming, waiting on, replaying and releasing them.

use crate::IdempotencyState::{self, Completed, InProgress, Started};

use super::*;

/// A day, the retention the tests give completed responses unless they say otherwise.
const DAY: i64 = 86_400;

/// Begins `key` at `now`, taking over claims made before `stale_before`, keeping a completed
/// response until `expires_at`.
async fn begin(store: &dyn Store, key: &str, now: i64, stale_before: i64, expires_at: i64) -> IdempotencyState {
    let result = store
        .idempotency_begin(key, at(now), at(stale_before), at(expires_at))
        .await;
    result.expect("idempotency_begin")
}

fn completed(status: u16, body: &[u8]) -> IdempotencyState {
    Completed {
        status,
        body: body.to_vec(),
    }
}

/// A new key is `Started`; beginning it again while that claim is fresh is `InProgress`, until
/// the claim is older than `stale_before` and the newcomer takes it over (and holds it in turn).
/// Keys are independent.
pub async fn idempotency_key_is_in_progress_until_its_claim_goes_stale(store: &dyn Store) {
    assert_eq!(begin(store, "key-a", 0, -60, DAY).await, Started);
    assert_eq!(begin(store, "key-a", 10, -50, 10 + DAY).await, InProgress);
    assert_eq!(begin(store, "key-b", 10, -50, 10 + DAY).await, Started);
    assert_eq!(begin(store, "key-a", 59, -1, 59 + DAY).await, InProgress);

    assert_eq!(begin(store, "key-a", 100, 1, 100 + DAY).await, Started);
    assert_eq!(begin(store, "key-a", 110, 50, 110 + DAY).await, InProgress);
    assert_eq!(begin(store, "key-b", 110, 50, 110 + DAY).await, Started);
}

/// A completed key replays its status and body (empty bodies too) to every later begin, however
/// old its claim, until the `expires_at` of the claim that completed it has passed; then the key
/// starts over.
pub async fn completed_idempotency_key_replays_its_response_until_it_expires(store: &dyn Store) {
    let body = br#"{"id":"app_1","name":"Acme"}"#;
    assert_eq!(begin(store, "create", 0, -60, 1000).await, Started);
    store
        .idempotency_complete("create", at(0), 201, body)
        .await
        .expect("complete");
    assert_eq!(begin(store, "empty", 0, -60, 1000).await, Started);
    store
        .idempotency_complete("empty", at(0), 204, b"")
        .await
        .expect("complete");

    assert_eq!(begin(store, "create", 10, -50, 10 + DAY).await, completed(201, body));
    assert_eq!(begin(store, "create", 999, 939, 999 + DAY).await, completed(201, body));
    assert_eq!(begin(store, "empty", 999, 939, 999 + DAY).await, completed(204, b""));

    assert_eq!(begin(store, "create", 1001, 941, 1001 + DAY).await, Started);
    assert_eq!(begin(store, "create", 1002, 942, 1002 + DAY).await, InProgress);
    store
        .idempotency_complete("create", at(1001), 200, b"second")
        .await
        .unwrap();
    assert_eq!(
        begin(store, "create", 1003, 943, 1003 + DAY).await,
        completed(200, b"second")
    );
}

/// Releasing a claim (the request failed) lets the next begin start at once, stale or not;
/// releasing never drops a completed response, nor fails for a key that is not held.
pub async fn released_idempotency_key_starts_again_but_a_completed_one_is_kept(store: &dyn Store) {
    assert_eq!(begin(store, "retry", 0, -60, DAY).await, Started);
    store.idempotency_release("retry", at(0)).await.expect("release");
    assert_eq!(begin(store, "retry", 1, -59, 1 + DAY).await, Started);
    assert_eq!(begin(store, "retry", 2, -58, 2 + DAY).await, InProgress);

    store
        .idempotency_complete("retry", at(1), 202, b"accepted")
        .await
        .unwrap();
    store
        .idempotency_release("retry", at(1))
        .await
        .expect("release after completion");
    assert_eq!(
        begin(store, "retry", 3, -57, 3 + DAY).await,
        completed(202, b"accepted")
    );
    store
        .idempotency_release("never-begun", at(0))
        .await
        .expect("release of an unknown key");
    assert_eq!(begin(store, "never-begun", 4, -56, 4 + DAY).await, Started);
}

/// A claim taken over after going stale belongs to the newcomer: the old owner's late release
/// or completion changes nothing, the newcomer's own does.
pub async fn a_stale_owners_late_release_or_completion_leaves_the_new_claim_alone(store: &dyn Store) {
    assert_eq!(begin(store, "slow", 0, -60, DAY).await, Started);
    assert_eq!(begin(store, "slow", 100, 1, 100 + DAY).await, Started, "taken over");
    store.idempotency_release("slow", at(0)).await.expect("late release");
    assert_eq!(begin(store, "slow", 101, 41, 101 + DAY).await, InProgress);
    store
        .idempotency_complete("slow", at(0), 500, b"stale")
        .await
        .expect("late completion");
    assert_eq!(begin(store, "slow", 102, 42, 102 + DAY).await, InProgress);
    store
        .idempotency_complete("slow", at(100), 201, b"fresh")
        .await
        .expect("completion");
    assert_eq!(begin(store, "slow", 103, 43, 103 + DAY).await, completed(201, b"fresh"));
}

/// A request whose write gate its deadline closed changes nothing: its writes fail as
/// `Unavailable` without reaching the database, while its idempotency bookkeeping still works.
/// A request's first write opens its gate for good (the deadline then waits for its outcome).
pub async fn a_request_closed_by_its_deadline_writes_nothing_and_one_that_wrote_is_awaited(store: &dyn Store) {
    use crate::gate::WriteGate;
    let mut g = Gen::new();
    let late = g.app(Live, None, at(0));
    let closed = WriteGate::new();
    assert!(closed.close());
    let (created, begun) = closed
        .clone()
        .scope(async {
            let created = store.create_application(&late).await;
            let begun = store.idempotency_begin("gated", at(0), at(-60), at(DAY)).await;
            (created, begun)
        })
        .await;
    assert!(
        matches!(created, Err(StoreError::Unavailable(_))),
        "refused: {created:?}"
    );
    assert_eq!(store.get_application(Live, &late.id).await.unwrap(), None);
    assert_eq!(begun.expect("bookkeeping passes a closed gate"), Started);
    assert!(!closed.has_written());

    let prompt = g.app(Live, None, at(1));
    let open = WriteGate::new();
    open.clone()
        .scope(store.create_application(&prompt))
        .await
        .expect("an open gate lets the write through");
    assert!(open.has_written());
    assert!(!open.close(), "the deadline can no longer cut it off");
    assert!(store.get_application(Live, &prompt.id).await.unwrap().is_some());
}

/// Expired idempotency keys are deleted in batches; live ones stay.
pub async fn expired_idempotency_keys_are_deleted_in_batches(store: &dyn Store) {
    for (key, expires) in [("a", 10), ("b", 20), ("c", 1000)] {
        let begun = store.idempotency_begin(key, at(0), at(-60), at(expires)).await.unwrap();
        assert_eq!(begun, IdempotencyState::Started);
        store.idempotency_complete(key, at(0), 202, b"{}").await.unwrap();
    }
    assert_eq!(
        store.delete_expired_idempotency(at(30), 1).await.unwrap(),
        1,
        "at most the limit"
    );
    assert_eq!(store.delete_expired_idempotency(at(30), 10).await.unwrap(), 1);
    assert_eq!(store.delete_expired_idempotency(at(30), 10).await.unwrap(), 0);
    assert!(matches!(
        store.idempotency_begin("c", at(30), at(-30), at(2000)).await.unwrap(),
        IdempotencyState::Completed { .. }
    ));
}

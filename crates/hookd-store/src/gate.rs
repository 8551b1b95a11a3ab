//! Whether a request may still write.
//!
//! An API request runs inside a [`WriteGate`] scope. Its first write opens the gate for good;
//! a request whose deadline passes before it wrote anything is closed instead and answered
//! `503`, and any write it tries afterwards fails without touching the database. So a request
//! answered `503 timeout` never commits later, and one that began writing is answered with its
//! real outcome, however long its commit takes. Writes outside any scope (the delivery engine,
//! background tasks) pass freely.
//!
//! Backends call [`begin_write`] before every statement or transaction that changes data.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::{StoreError, StoreResult};

const IDLE: u8 = 0;
const WRITING: u8 = 1;
const CLOSED: u8 = 2;

tokio::task_local! {
    static GATE: WriteGate;
}

/// One request's gate; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct WriteGate(Arc<AtomicU8>);

impl WriteGate {
    /// A gate that has seen no write yet.
    pub fn new() -> WriteGate {
        WriteGate::default()
    }

    /// Runs `f` with this gate as the current one.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        GATE.scope(self, f).await
    }

    /// Closes the gate unless a write has begun: true when closed (nothing was or will be
    /// written under it), false when a write has begun and its outcome must be awaited.
    pub fn close(&self) -> bool {
        match self
            .0
            .compare_exchange(IDLE, CLOSED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == CLOSED,
        }
    }

    /// Whether a write has begun under this gate.
    pub fn has_written(&self) -> bool {
        self.0.load(Ordering::Acquire) == WRITING
    }

    fn enter(&self) -> StoreResult<()> {
        match self
            .0
            .compare_exchange(IDLE, WRITING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(WRITING) => Ok(()),
            Err(_) => Err(StoreError::Unavailable(
                "the request timed out before it wrote; nothing was changed".into(),
            )),
        }
    }
}

/// Called by a backend before it changes data: fails when the current request's gate was
/// closed by its deadline, and otherwise marks that the request has begun writing.
pub fn begin_write() -> StoreResult<()> {
    GATE.try_with(WriteGate::enter).unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_gate_refuses_writes_and_an_opened_one_cannot_be_closed() {
        assert!(begin_write().is_ok(), "outside any request, writes pass");

        let closed = WriteGate::new();
        assert!(closed.close());
        let refused = closed.clone().scope(async { begin_write() }).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))));
        assert!(!closed.has_written());

        let open = WriteGate::new();
        open.clone()
            .scope(async {
                begin_write().unwrap();
                begin_write().unwrap();
            })
            .await;
        assert!(open.has_written());
        assert!(!open.close(), "a request that began writing is awaited, not cut off");
        assert!(open.clone().scope(async { begin_write() }).await.is_ok());
    }
}

//! Whether a request may still write.
//!
//! An API request runs inside a [`WriteGate`] scope. Its first write opens the gate for good;
//! a request whose deadline passes before it wrote anything is closed instead and answered
//! `503`, and any write it tries afterwards fails without touching the database. So a request
//! answered `503 timeout` never commits later, and one that began writing is answered with its
//! real outcome, however long its commit takes. Writes outside any scope (the delivery engine,
//! background tasks) pass freely.
//!
//! Backends call [`begin_write`] before every statement or transaction that changes data. A
//! backend that queues writes for a single writer (SQLite's group commit) calls
//! [`queue_write`] instead, and the writer calls [`QueuedWrite::start`] when it actually runs
//! the write: until then the deadline may still close the gate, so a request stuck behind slow
//! commits (a slow disk) is answered `503` at its deadline instead of waiting its turn, and the
//! writer skips its write.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::{StoreError, StoreResult};

const IDLE: u8 = 0;
const WRITING: u8 = 1;
const CLOSED: u8 = 2;
/// A write is queued for the writer but has not started: the gate may still close.
const QUEUED: u8 = 3;

tokio::task_local! {
    static GATE: WriteGate;
}

/// One request's gate; cheap to clone.
#[derive(Debug, Clone)]
pub struct WriteGate(Arc<AtomicU8>);

impl Default for WriteGate {
    fn default() -> WriteGate {
        WriteGate::new()
    }
}

impl WriteGate {
    /// A gate that has seen no write yet.
    pub fn new() -> WriteGate {
        WriteGate(Arc::new(AtomicU8::new(IDLE)))
    }

    /// Runs `f` with this gate as the current one.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        GATE.scope(self, f).await
    }

    /// Closes the gate unless a write has begun: true when closed (nothing was or will be
    /// written under it: a queued write will be skipped), false when a write has begun and its
    /// outcome must be awaited.
    pub fn close(&self) -> bool {
        let mut state = self.0.load(Ordering::Acquire);
        loop {
            match state {
                CLOSED => return true,
                WRITING => return false,
                _ => match self
                    .0
                    .compare_exchange(state, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return true,
                    Err(now) => state = now,
                },
            }
        }
    }

    /// Whether a write has begun under this gate.
    pub fn has_written(&self) -> bool {
        self.0.load(Ordering::Acquire) == WRITING
    }

    /// Moves the gate to `to` (`QUEUED` or `WRITING`) unless it is closed; a gate already
    /// writing stays writing, and one already queued stays queued when asked to queue.
    fn advance(&self, to: u8) -> StoreResult<()> {
        let mut state = self.0.load(Ordering::Acquire);
        loop {
            let next = match state {
                WRITING => return Ok(()),
                CLOSED => return Err(timed_out()),
                QUEUED if to == QUEUED => return Ok(()),
                _ => to,
            };
            match self
                .0
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(now) => state = now,
            }
        }
    }
}

fn timed_out() -> StoreError {
    StoreError::Unavailable("the request timed out before it wrote; nothing was changed".into())
}

/// A write queued under a request's gate, to be confirmed by the writer when it runs it.
#[derive(Debug)]
pub struct QueuedWrite(Option<WriteGate>);

impl QueuedWrite {
    /// Called by the writer just before it runs the write: `Err` when the request's deadline
    /// closed the gate meanwhile (the write must be skipped); otherwise the request has now
    /// begun writing and will be answered with the write's real outcome.
    pub fn start(&self) -> StoreResult<()> {
        self.0.as_ref().map_or(Ok(()), |gate| gate.advance(WRITING))
    }
}

/// Called by a backend before it queues a change for a writer: fails when the current
/// request's gate was closed by its deadline; otherwise returns what the writer confirms with
/// [`QueuedWrite::start`]. Outside any request, writes pass freely.
pub fn queue_write() -> StoreResult<QueuedWrite> {
    match GATE.try_with(WriteGate::clone) {
        Ok(gate) => {
            gate.advance(QUEUED)?;
            Ok(QueuedWrite(Some(gate)))
        }
        Err(_) => Ok(QueuedWrite(None)),
    }
}

/// Whether the current task is serving an API request (runs inside a [`WriteGate`] scope).
pub fn in_request() -> bool {
    GATE.try_with(|_| ()).is_ok()
}

/// Called by a backend before it changes data: fails when the current request's gate was
/// closed by its deadline, and otherwise marks that the request has begun writing.
pub fn begin_write() -> StoreResult<()> {
    GATE.try_with(|gate| gate.advance(WRITING)).unwrap_or(Ok(()))
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

    #[tokio::test]
    async fn a_queued_write_can_still_be_closed_until_the_writer_starts_it() {
        let outside = queue_write().unwrap();
        assert!(outside.start().is_ok(), "outside any request, writes pass");

        // Closed while queued: the writer must skip it.
        let gate = WriteGate::new();
        let queued = gate.clone().scope(async { queue_write() }).await.unwrap();
        assert!(!gate.has_written());
        assert!(gate.close(), "a queued write has not begun");
        assert!(matches!(queued.start(), Err(StoreError::Unavailable(_))));
        assert!(gate.clone().scope(async { queue_write() }).await.is_err());

        // Started before the deadline: the request is awaited.
        let gate = WriteGate::new();
        let queued = gate.clone().scope(async { queue_write() }).await.unwrap();
        let again = gate.clone().scope(async { queue_write() }).await.unwrap();
        queued.start().unwrap();
        assert!(gate.has_written());
        assert!(!gate.close(), "a started write is awaited");
        again.start().unwrap();
        assert!(gate.clone().scope(async { begin_write() }).await.is_ok());
    }
}

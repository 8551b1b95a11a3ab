//! The delivery engine's own threads.
//!
//! The engine runs on a Tokio runtime apart from the API's. Its tasks (the poller, the send
//! loop, the sends, the recorder, the keep-alive connections) then never stand in the run
//! queues the API's requests wait in. Its threads also run at a lower CPU priority
//! (`delivery.engine_nice`). When the machine has cycles to spare the engine takes them
//! all, and when a burst of publishes and its deliveries want more than the machine has,
//! the publishes are acknowledged first: a publisher waits on its request, a delivery's
//! consumer does not. The SQLite writer keeps its own thread at the process's priority, so
//! the commits the API waits for are never slowed by it.
//!
//! On SQLite only. The engine reaches SQLite through channels to the writer's thread and
//! through blocking reads on its own runtime's threads, so nothing it waits on is driven by
//! the API's runtime. PostgreSQL connections are sockets in one pool shared by the API and
//! the engine, and each is driven by the runtime that opened it: a query of one runtime on
//! the other's connection waits until that runtime's busy threads look at their sockets.
//! Measured with two nodes at fan-out 10, the engine fell behind its publishes and most
//! deliveries went through claims (18,356 → 11,879 deliveries/s, docs/performance.md), so on
//! PostgreSQL the engine stays on the API's runtime.

use tokio::runtime::{Builder, Handle, Runtime};

/// Threads of the engine's runtime are named so (`top -H`, `ps -L`, profiles).
pub const THREAD_NAME: &str = "hookd-engine";

/// A multi-threaded runtime for the delivery engine, shut down without waiting when dropped:
/// by then the engine has flushed what it owed, and whatever is left (idle keep-alive
/// connections) needs no goodbye. Dropping it is safe inside async code, unlike a bare
/// [`Runtime`].
pub struct EngineRuntime {
    runtime: Option<Runtime>,
}

impl EngineRuntime {
    /// Starts one worker thread per core, each `nice` steps below the process's priority, as
    /// are the runtime's blocking threads (the engine's database reads on SQLite).
    pub fn start(nice: u8) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .enable_all()
            .thread_name(THREAD_NAME)
            .on_thread_start(move || lower_priority(nice))
            .build()?;
        Ok(EngineRuntime { runtime: Some(runtime) })
    }

    /// Where the engine's tasks are spawned.
    pub fn handle(&self) -> &Handle {
        self.runtime.as_ref().expect("the runtime lives until dropped").handle()
    }
}

impl Drop for EngineRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Raises the calling thread's nice value by `nice` (never needs a privilege). On Linux a nice
/// value belongs to each thread, so this leaves the API's threads alone; elsewhere it would
/// change the whole process, so it is left out there.
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let current = rustix::process::getpriority_process(None).unwrap_or(0);
        let wanted = (current + i32::from(nice)).min(i32::from(crate::config::MAX_ENGINE_NICE));
        if let Err(e) = rustix::process::setpriority_process(None, wanted) {
            tracing::warn!(error = %e, "cannot lower the delivery engine's thread priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the thread that calls it.
    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        rustix::process::getpriority_process(None).unwrap()
    }

    /// What `task` returns, run on one of the engine's worker threads.
    #[cfg(target_os = "linux")]
    fn on_engine<T: Send + 'static>(
        engine: &EngineRuntime,
        task: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        engine.handle().block_on(engine.handle().spawn(task)).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_engines_threads_run_below_the_callers_priority_and_leave_it_alone() {
        let before = own_nice();
        let engine = EngineRuntime::start(7).unwrap();
        let blocking = engine
            .handle()
            .block_on(engine.handle().spawn_blocking(own_nice))
            .unwrap();
        let on_worker = on_engine(&engine, async {
            (own_nice(), std::thread::current().name().map(str::to_owned))
        });
        assert_eq!(own_nice(), before, "the caller's own priority is not changed");
        assert_eq!(on_worker, ((before + 7).min(19), Some(THREAD_NAME.to_owned())));
        assert_eq!(blocking, (before + 7).min(19), "blocking threads are lowered too");
        drop(engine);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_nice_of_zero_keeps_the_callers_priority() {
        let before = own_nice();
        let engine = EngineRuntime::start(0).unwrap();
        let on_worker = on_engine(&engine, async { own_nice() });
        assert_eq!(on_worker, before);
    }

    #[tokio::test]
    async fn dropping_it_inside_async_code_stops_its_tasks_without_blocking() {
        let engine = EngineRuntime::start(0).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = engine.handle().spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        drop(engine);
        assert!(
            rx.await.is_err(),
            "the engine's pending task was dropped with its runtime"
        );
        assert!(running.await.unwrap_err().is_cancelled());
    }
}

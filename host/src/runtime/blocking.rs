//! Guest calls from code that is not async. Every call into a guest is a
//! future on the async runtime; a few callers are plain functions (loading,
//! which describes a plugin while it compiles it; the `backtest` command;
//! the demo's traffic threads; tests), and this runs one call to its end
//! on the calling thread.

use std::future::Future;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Run `fut` to completion, blocking this thread meanwhile. Never use it on
/// the call path: an async caller awaits the call instead.
///
/// - Outside any tokio runtime (a plain thread, the CLI), the call runs on
///   wasmtime-wasi's own runtime, which the guest's WASI timers and I/O need.
/// - On a thread of a multi-threaded runtime (a worker or its blocking
///   pool), it runs on that runtime; a worker hands its other tasks to the
///   rest of the pool first (`block_in_place`).
/// - On a current-thread runtime it runs on a thread of its own: blocking
///   that runtime's only thread would stall the timers the call may wait on.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    match Handle::try_current() {
        Err(_) => wasmtime_wasi::runtime::in_tokio(fut),
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(fut))
        }
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| wasmtime_wasi::runtime::in_tokio(fut)).join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
    }
}

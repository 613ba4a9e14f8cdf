//! Starting worker processes from one thread that lives as long as the service.
//!
//! A worker asks the kernel to kill it when the service dies (`PR_SET_PDEATHSIG`), and Linux
//! takes the *thread* that started a process for its parent. Tokio's threads come and go:
//! blocking-pool threads end after an idle keep-alive, and a runtime thread that called
//! `block_in_place` (the indexes do) can end up among them. A worker started from one of them was
//! killed when that thread ended, sometimes in the middle of a file, which was then refused as
//! damaged. Every worker is started from this module's thread instead, which never ends.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{OnceLock, mpsc};

use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

type Request = (Command, Handle, oneshot::Sender<std::io::Result<Child>>);

/// Starts `command` from the starter thread, within the caller's runtime (which then owns the
/// child's pipes). Must be called inside a tokio runtime.
pub(super) async fn spawn(mut command: Command) -> std::io::Result<Child> {
    let Some(starter) = starter() else {
        return command.spawn();
    };
    let stopped = || std::io::Error::other("the thread that starts extraction workers has stopped");
    let (reply, answer) = oneshot::channel();
    starter.send((command, Handle::current(), reply)).map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?
}

/// The starter thread's queue, started on first use; `None` if no thread could be started (the
/// workers are then started in place, as before).
fn starter() -> Option<&'static mpsc::Sender<Request>> {
    static STARTER: OnceLock<Option<mpsc::Sender<Request>>> = OnceLock::new();
    STARTER
        .get_or_init(|| {
            let (requests, queue) = mpsc::channel::<Request>();
            let thread = std::thread::Builder::new().name("footnote-worker-starter".into()).spawn(move || {
                for (mut command, runtime, reply) in queue {
                    let _context = runtime.enter();
                    let child = catch_unwind(AssertUnwindSafe(|| command.spawn()))
                        .unwrap_or_else(|_| Err(std::io::Error::other("starting the worker panicked")));
                    let _ = reply.send(child);
                }
            });
            match thread {
                Ok(_) => Some(requests),
                Err(error) => {
                    tracing::warn!(%error, "cannot start the thread that starts extraction workers");
                    None
                }
            }
        })
        .as_ref()
}

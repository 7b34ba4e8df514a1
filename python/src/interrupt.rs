//! Long work without the GIL, stopped by Ctrl-C.
//!
//! The work runs on a thread of rayon's pool with the GIL released, so other Python
//! threads run; this (the calling) thread wakes every 20 ms to let Python
//! run its signal handlers. On Ctrl-C it asks the crate to stop
//! (`jobs::interrupt`: the sampler stops at its next evaluation, training
//! before its next update, a sweep after its cells' current steps), waits
//! for the worker and raises the KeyboardInterrupt. What was written stays:
//! a rerun resumes.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use diffusion_regimes::jobs::{clear_interrupt, interrupt, on_pool};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::IntoPy;

/// How often the calling thread looks for a signal.
const POLL: Duration = Duration::from_millis(20);

/// Runs `work` as described above; a panic in it becomes a RuntimeError.
pub fn run<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> diffusion_regimes::Result<T> + Send,
) -> PyResult<T> {
    clear_interrupt();
    let mut signal: Option<PyErr> = None;
    let finished = py.allow_threads(|| {
        std::thread::scope(|scope| {
            // The worker says when it is done (or, by dropping the sender,
            // that it panicked), so a short call returns at once.
            let (done, finished) = mpsc::channel::<()>();
            let worker = scope.spawn(move || {
                // On rayon's pool, so the kernels run on the worker instead
                // of being handed to the pool op by op (`jobs::on_pool`).
                let result = on_pool(work);
                let _ = done.send(());
                result
            });
            while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(POLL) {
                if signal.is_none() {
                    if let Err(e) = Python::with_gil(|py| py.check_signals()) {
                        interrupt();
                        signal = Some(e);
                    }
                }
            }
            worker.join()
        })
    });
    clear_interrupt();
    match (signal, finished) {
        (Some(e), _) => Err(e),
        (None, Ok(result)) => result.py(),
        (None, Err(panic)) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(PyRuntimeError::new_err(format!(
                "internal error in diffusion_regimes (please report it): {what}"
            )))
        }
    }
}

//! Running long work: progress bars, items spread over worker threads, and
//! the interrupt that stops them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::{Error, Result};

/// A progress bar over `total` units of work named `unit`.
pub fn progress_bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total.max(1));
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:30}} {{percent}}% {unit} {{msg}} eta {{eta}}"
        ))
        .expect("valid template"),
    );
    bar
}

/// Runs `work` on every item on `jobs` worker threads, stopping at the first
/// error, which it returns; the bar's message counts finished items. With
/// several jobs each worker runs inside its own one-thread rayon pool, so
/// the kernels' parallel loops stay on that worker instead of queueing for
/// the process's shared pool (where the jobs would wait on each other); how
/// many threads candle's ops use is the process's setting
/// (`cli::set_jobs`, called once by the binaries). The results do
/// not depend on either.
pub fn run_parallel<T: Sync>(
    items: &[T],
    jobs: usize,
    bar: &ProgressBar,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let jobs = jobs.clamp(1, items.len().max(1));
    let (next, done, failed) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicBool::new(false),
    );
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    bar.set_message(format!("done 0/{}", items.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let worker = || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= items.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                match check_interrupt().and_then(|()| work(&items[k])) {
                    Ok(()) => {
                        let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                        bar.set_message(format!("done {d}/{}", items.len()));
                    }
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        let mut slot = first_error.lock().expect("no worker panics holding it");
                        slot.get_or_insert(e);
                    }
                }
            };
            scope.spawn(move || match jobs {
                1 => worker(),
                _ => match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool.install(worker),
                    // Without a pool of its own the worker shares the global one.
                    Err(_) => worker(),
                },
            });
        }
    });
    bar.finish_and_clear();
    match first_error.into_inner().expect("workers have finished") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs `work` on a thread of rayon's pool and waits for it. The kernels'
/// parallel loops and gemm, called from a pool thread, run on it (the caller
/// takes part; with one thread, inline); called from any other thread, every
/// one of them is handed to the pool while the caller sleeps: dozens of
/// futex waits and yields per training step (BENCHMARKS.md). Long work
/// (training, sampling, sweeps) starts here; results do not depend on it.
pub fn on_pool<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    rayon::scope(|_| work())
}

/// Threads for each job's tensor ops: one when several jobs run at once (no
/// oversubscription, and the fastest setting for small networks), else every core.
pub fn tensor_threads(jobs: usize) -> usize {
    match jobs {
        0 | 1 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        _ => 1,
    }
}

/// Set by [`interrupt`]; every sampler evaluation, training step and
/// worker loop checks it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks all running work of this process to stop at its next check (a
/// sampler evaluation, a training step), with [`Error::Interrupted`].
/// Training stops before the step's update, so its last checkpoint stands
/// and a rerun resumes. The Python package calls it on Ctrl-C.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Clears a past [`interrupt`], before new work starts.
pub fn clear_interrupt() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// [`Error::Interrupted`] once [`interrupt`] was called.
pub fn check_interrupt() -> Result<()> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        true => Err(Error::Interrupted),
        false => Ok(()),
    }
}

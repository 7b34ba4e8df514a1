//! Cell locks: a worker holds `cell.lock` in a cell's folder while it trains
//! and scores the cell, so two workers that reach the same cell (a
//! resubmitted array task while the old one still runs, overlapping shards,
//! two sweeps started in one folder) never run it at once; the second skips it.
//!
//! The lock is a file created atomically (create-new) naming the holder's
//! host, pid and start time. While held, a heartbeat thread touches it, so
//! a lock is stale when its process is gone (same host) or its heartbeat
//! stopped longer ago than a limit (any host, e.g. a node that died); a
//! stale lock is taken over with a message. Every lock event and finished
//! training segment is appended to the cell's `cell.log`, the record of who
//! did what to the cell.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const LOCK_FILE: &str = "cell.lock";
pub const LOG_FILE: &str = "cell.log";

/// A lock whose heartbeat stopped this long ago is stale, by default.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(600);

/// Who holds a lock: the lock file's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// Unix seconds when it took the lock.
    pub started: u64,
}

impl Holder {
    /// This process, now.
    pub fn me() -> Self {
        Holder {
            host: host_name(),
            pid: std::process::id(),
            started: unix_seconds(SystemTime::now()),
        }
    }

    /// `host:pid`, as the cell log names workers.
    pub fn name(&self) -> String {
        format!("{}:{}", self.host, self.pid)
    }
}

/// Why a lock may be taken over, or None while its holder looks alive.
fn staleness(holder: &Holder, heartbeat: SystemTime, stale_after: Duration) -> Option<String> {
    let me = Holder::me();
    if holder.host == me.host && holder.pid != me.pid && !process_alive(holder.pid) {
        return Some("its process is gone".into());
    }
    let silent = SystemTime::now()
        .duration_since(heartbeat)
        .unwrap_or_default();
    (silent > stale_after).then(|| {
        format!(
            "its heartbeat stopped {} s ago, over the limit of {} s",
            silent.as_secs(),
            stale_after.as_secs()
        )
    })
}

/// A held cell lock; dropping it stops the heartbeat and removes the file.
pub struct CellLock {
    path: PathBuf,
    holder: Holder,
    stop: Option<Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl CellLock {
    /// Takes the lock of the cell folder `dir` (creating the folder), taking
    /// over a stale one; None when a live worker holds it.
    pub fn acquire(dir: &Path, stale_after: Duration) -> Result<Option<CellLock>> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let me = Holder::me();
        // Twice at most: once more after removing a stale lock.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let text = serde_json::to_string(&me).expect("a holder serializes");
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io(&path, e))?;
                    log(dir, &format!("{} took the lock", me.name()))?;
                    return Ok(Some(CellLock::hold(path, me, stale_after)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !take_over_if_stale(dir, &path, stale_after)? {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(None)
    }

    fn hold(path: PathBuf, holder: Holder, stale_after: Duration) -> Self {
        let (stop, stopped) = channel::<()>();
        let beat = (stale_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let file = path.clone();
        let heartbeat = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(beat) {
                // A missed beat only makes the lock look older; the next one retries.
                let _ = File::options()
                    .write(true)
                    .open(&file)
                    .and_then(|f| f.set_modified(SystemTime::now()));
            }
        });
        CellLock {
            path,
            holder,
            stop: Some(stop),
            heartbeat: Some(heartbeat),
        }
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for CellLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(beat) = self.heartbeat.take() {
            let _ = beat.join();
        }
        // Remove it only while it is still ours (not taken over meanwhile).
        if read_holder(&self.path).ok().flatten().map(|(h, _)| h) == Some(self.holder.clone()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the lock at `path` when it is stale, saying so on stderr and in
/// the cell's log; false while its holder is alive.
fn take_over_if_stale(dir: &Path, path: &Path, stale_after: Duration) -> Result<bool> {
    let Some((holder, heartbeat)) = read_holder(path)? else {
        // Released (or unreadable half-written) between our two calls: try again.
        return Ok(true);
    };
    let Some(why) = staleness(&holder, heartbeat, stale_after) else {
        return Ok(false);
    };
    // Move it aside atomically and check that what moved is the stale lock,
    // not a fresh one another worker wrote after our read.
    let aside = dir.join(format!("{LOCK_FILE}.stale-{}", std::process::id()));
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(Error::io(path, e)),
    }
    let moved = read_holder(&aside)?.map(|(h, _)| h);
    if moved.as_ref() != Some(&holder) {
        // Put the fresh lock back unless yet another worker has one there.
        let _ = std::fs::hard_link(&aside, path);
        let _ = std::fs::remove_file(&aside);
        return Ok(false);
    }
    std::fs::remove_file(&aside).map_err(|e| Error::io(&aside, e))?;
    let message = format!(
        "{} took over the lock of {} (started {}): {why}",
        Holder::me().name(),
        holder.name(),
        holder.started
    );
    eprintln!("{}: {message}", dir.display());
    log(dir, &message)?;
    Ok(true)
}

/// The holder named in a lock file and its last heartbeat (modification
/// time); None when there is no file or it is not a whole lock yet.
fn read_holder(path: &Path) -> Result<Option<(Holder, SystemTime)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(UNIX_EPOCH);
    Ok(serde_json::from_str(&text).ok().map(|h| (h, modified)))
}

/// Appends `event` to the cell's `cell.log`, stamped with Unix seconds.
pub fn log(dir: &Path, event: &str) -> Result<()> {
    let path = dir.join(LOG_FILE);
    let line = format!("{} {event}\n", unix_seconds(SystemTime::now()));
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| Error::io(&path, e))
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// This machine's name (the kernel's), as the lock files record it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether a process of this pid runs on this machine (a zombie, ended but
/// not yet reaped, does not). Without /proc (not Linux) every process counts
/// as alive, so only the heartbeat limit applies.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
        // "pid (name) S ...": the state follows the name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

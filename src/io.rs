//! Atomic file writes: a temp file beside the target, then a rename, so a
//! killed process never leaves a torn or partial file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically, creating parent folders; a failed
/// write (a full disk) leaves no file and none of the folders it created.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let created = create_parents(path)?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        remove_created(&created);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Writes a folder of files all or nothing: `fill` writes into a staging
/// folder beside `dir`, which then takes its name, so a failure leaves
/// neither files nor folders behind. A `dir` that already holds files is
/// filled in place instead (each file still written whole or not at all).
pub fn write_folder(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return fill(dir);
    }
    let created = create_parents(dir)?;
    let staging = temp_path(dir);
    let _ = std::fs::remove_dir_all(&staging);
    // Renaming onto an empty folder replaces it (POSIX rename).
    let result = std::fs::create_dir(&staging)
        .map_err(|e| Error::io(&staging, e))
        .and_then(|()| fill(&staging))
        .and_then(|()| std::fs::rename(&staging, dir).map_err(|e| Error::io(dir, e)));
    result.map_err(|e| {
        let _ = std::fs::remove_dir_all(&staging);
        remove_created(&created);
        // Name the file the user asked for, not its staging copy.
        let named = |path: PathBuf| match path.strip_prefix(&staging) {
            Ok(inside) => dir.join(inside),
            Err(_) => path,
        };
        match e {
            Error::Io { path, source } => Error::Io {
                path: named(path),
                source,
            },
            Error::Format { path, message } => Error::Format {
                path: named(path),
                message,
            },
            other => other,
        }
    })
}

/// Creates the missing parent folders of `path`; returns those this call
/// created (not those another process made meanwhile), innermost first.
fn create_parents(path: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut parent = path.parent();
    while let Some(dir) = parent.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(dir.to_path_buf());
        parent = dir.parent();
    }
    let mut created = Vec::new();
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(&dir) {
            Ok(()) => created.insert(0, dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                remove_created(&created);
                return Err(Error::io(&dir, e));
            }
        }
    }
    Ok(created)
}

/// Removes folders [`create_parents`] made, innermost first, while empty.
fn remove_created(created: &[PathBuf]) {
    for dir in created {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// `value` as pretty JSON in `path`, written atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| Error::format(path, e.to_string()))?;
    write_atomic(path, &json)
}

/// The JSON value in `path`; errors name the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read(path)?).map_err(|e| Error::parse(path, e))
}

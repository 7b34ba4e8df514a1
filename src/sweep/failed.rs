//! Cells whose training diverged: recorded as failed (`failed.json` in the
//! cell's folder), never scored, listed by `collect`. A rerun skips them, as
//! the same seed diverges again; delete the file (and the cell's run/) to
//! retry with other settings.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cell::Cell;
use crate::io::{read_json, write_json};
use crate::{Error, Result};

pub const FAILED_FILE: &str = "failed.json";

/// A cell that could not be trained: where and why (`failed.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedCell {
    pub cell: Cell,
    pub label: String,
    /// The training step at which it diverged.
    pub step: u64,
    pub error: String,
}

impl FailedCell {
    /// Records `cell` in `dir` as failed when `error` is a divergence;
    /// returns the error back otherwise.
    pub fn record(cell: &Cell, dir: &Path, error: Error) -> Result<FailedCell> {
        let Error::Diverged { step, .. } = error else {
            return Err(error);
        };
        let failed = FailedCell {
            cell: cell.clone(),
            label: cell.model.label(),
            step,
            error: error.to_string(),
        };
        write_json(&dir.join(FAILED_FILE), &failed)?;
        eprintln!("{}: {}", dir.display(), failed.error);
        Ok(failed)
    }

    pub fn read(dir: &Path) -> Result<Self> {
        read_json(&dir.join(FAILED_FILE))
    }
}

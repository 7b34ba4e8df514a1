//! CIFAR-10 binary batches (`cifar-10-batches-bin/data_batch_1.bin` ...):
//! records of one label byte (0-9) then 3 x 32 x 32 pixel bytes, red plane,
//! green plane, blue plane, each row-major.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::io::read;
use crate::{Error, Result};

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;
const RECORD: usize = 1 + PIXELS;

/// The images of one batch file, or of every `data_batch_*.bin` in a folder
/// (the training set; give `test_batch.bin` by name to read that), as u8
/// [N, 3, 32, 32], and their labels (each record's first byte).
pub fn read_cifar10(path: &Path) -> Result<(Tensor, Vec<u32>)> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for file in batch_files(path)? {
        let bytes = read(&file)?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(Error::format(
                &file,
                format!(
                    "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (1 label byte + 3x32x32 pixels): truncated, or not CIFAR-10",
                    bytes.len()
                ),
            ));
        }
        for (k, record) in bytes.chunks_exact(RECORD).enumerate() {
            if record[0] > 9 {
                return Err(Error::format(
                    &file,
                    format!(
                        "record {k} has label {}; CIFAR-10 labels are 0-9 (CIFAR-100 files are not supported)",
                        record[0]
                    ),
                ));
            }
            labels.push(u32::from(record[0]));
            pixels.extend_from_slice(&record[1..]);
        }
    }
    let n = pixels.len() / PIXELS;
    let images = Tensor::from_vec(pixels, (n, 3, SIDE, SIDE), &Device::Cpu)?;
    Ok((images, labels))
}

fn batch_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::format(
            path,
            "holds no data_batch_*.bin files; give the cifar-10-batches-bin folder or one batch file",
        ));
    }
    Ok(files)
}

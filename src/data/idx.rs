//! MNIST IDX files (`train-images-idx3-ubyte`, optionally gzipped): a big-endian
//! header `0 0 type ndim`, `ndim` u32 sizes, then the values. Image files hold
//! unsigned bytes (type 0x08) of shape [N, rows, cols].

use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::io::read;
use crate::{Error, Result};

const UNSIGNED_BYTE: u8 = 0x08;

/// The images of an IDX file as u8 [N, 1, rows, cols].
pub fn read_idx_images(path: &Path) -> Result<Tensor> {
    let bytes = gunzip_if_gzipped(read(path)?, path)?;
    let bad = |m: String| Error::format(path, format!("not an MNIST IDX image file: {m}"));
    if bytes.len() < 4 || bytes[..2] != [0, 0] {
        return Err(bad(
            "wrong magic number (expected 0x0000 then type and rank)".into(),
        ));
    }
    let (kind, rank) = (bytes[2], bytes[3] as usize);
    if kind != UNSIGNED_BYTE {
        return Err(bad(format!(
            "element type 0x{kind:02x} is not supported; image files hold unsigned bytes (0x08)"
        )));
    }
    if rank != 3 {
        return Err(bad(format!(
            "it has {rank} dimensions, images need 3 [N, rows, cols]{}",
            if rank == 1 {
                " (is this a label file?)"
            } else {
                ""
            }
        )));
    }
    let header = 4 + 4 * rank;
    let dims: Vec<usize> = bytes
        .get(4..header)
        .ok_or_else(|| bad("header is truncated".into()))?
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()) as usize)
        .collect();
    if dims.contains(&0) {
        return Err(bad(format!("shape {dims:?} has a zero dimension")));
    }
    let data = &bytes[header..];
    // A corrupt header's shape can overflow the byte count.
    let expected = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if expected != Some(data.len()) {
        let needs = expected.map_or("more than 2^64".into(), |e| e.to_string());
        return Err(bad(format!(
            "data is {} bytes but shape {dims:?} needs {needs}: truncated or corrupt",
            data.len()
        )));
    }
    Ok(Tensor::from_vec(
        data.to_vec(),
        (dims[0], 1, dims[1], dims[2]),
        &Device::Cpu,
    )?)
}

/// The bytes themselves, or their gzip decompression when they start with
/// gzip's magic number (the form MNIST is distributed in).
pub fn gunzip_if_gzipped(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| Error::format(path, format!("broken gzip stream: {e}")))?;
    Ok(out)
}

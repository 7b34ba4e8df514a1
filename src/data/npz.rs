//! Reading one named array from a numpy `.npz` archive (what `np.savez`
//! writes: a zip of `.npy` members, stored without compression).

use std::path::Path;

use candle_core::Tensor;

use super::npy::parse_npy;
use crate::io::read;
use crate::{Error, Result};

const LOCAL_HEADER: u32 = 0x0403_4b50;

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A member's compressed size from its zip64 extra field (tag 1), when the header says 0xFFFFFFFF.
fn zip64_size(extra: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (tag, len) = (u16_at(extra, at)?, u16_at(extra, at + 2)?);
        if tag == 1 && len >= 16 {
            // uncompressed size, then compressed size (what the member occupies).
            return Some(
                u64::from_le_bytes(extra.get(at + 12..at + 20)?.try_into().ok()?) as usize,
            );
        }
        at += 4 + len;
    }
    None
}

/// The array `name` (with or without `.npy`) of the archive at `path`.
pub fn read_npz(path: &Path, name: &str) -> Result<Tensor> {
    let bytes = read(path)?;
    let want = name.strip_suffix(".npy").unwrap_or(name);
    let bad = |m: &str| Error::format(path, m.to_string());
    let mut at = 0;
    let mut names = Vec::new();
    while u32_at(&bytes, at) == Some(LOCAL_HEADER) {
        let field =
            |offset: usize| u16_at(&bytes, at + offset).ok_or_else(|| bad("truncated zip header"));
        let (flags, method) = (field(6)?, field(8)?);
        let (name_len, extra_len) = (field(26)?, field(28)?);
        let header_size = u32_at(&bytes, at + 18).ok_or_else(|| bad("truncated zip header"))?;
        let start = at + 30 + name_len + extra_len;
        let member = bytes
            .get(at + 30..at + 30 + name_len)
            .ok_or_else(|| bad("truncated zip header"))?;
        let member = String::from_utf8_lossy(member).into_owned();
        let extra = bytes.get(at + 30 + name_len..start).unwrap_or_default();
        let size = match header_size {
            u32::MAX => zip64_size(extra).ok_or_else(|| bad("zip64 member without its size"))?,
            s => s as usize,
        };
        if flags & 8 != 0 {
            return Err(bad("streamed zip members (data descriptors) are not supported; save with np.savez to a file"));
        }
        let stem = member.strip_suffix(".npy").unwrap_or(&member).to_string();
        if stem == want {
            if method != 0 {
                return Err(bad(
                    "compressed .npz (np.savez_compressed) is not supported; save with np.savez",
                ));
            }
            let data = bytes
                .get(start..start + size)
                .ok_or_else(|| bad("truncated archive"))?;
            return parse_npy(data, &path.join(&member));
        }
        names.push(stem);
        at = start + size;
    }
    Err(Error::format(
        path,
        format!("has no array named {want:?} (found {names:?})"),
    ))
}

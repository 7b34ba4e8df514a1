//! Reading one array from a numpy `.npz` archive: a zip of `.npy` members,
//! stored (`np.savez`) or deflated (`np.savez_compressed`).

use std::io::Read;
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

/// The array `name` (with or without `.npy`) of the archive at `path`; with
/// no name, its only array.
pub fn read_npz(path: &Path, name: Option<&str>) -> Result<Tensor> {
    let bytes = read(path)?;
    let members = members(&bytes, path)?;
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let want = match name {
        Some(n) => n.strip_suffix(".npy").unwrap_or(n),
        None if members.len() == 1 => &members[0].name,
        None => {
            return Err(Error::format(
                path,
                format!(
                    "holds {} arrays {names:?}; name the one to read",
                    members.len()
                ),
            ))
        }
    };
    let member = members.iter().find(|m| m.name == want).ok_or_else(|| {
        Error::format(
            path,
            format!("has no array named {want:?} (found {names:?})"),
        )
    })?;
    let inner = path.join(format!("{}.npy", member.name));
    match member.method {
        STORED => parse_npy(member.data, &inner),
        DEFLATED => {
            let mut npy = Vec::new();
            flate2::read::DeflateDecoder::new(member.data)
                .read_to_end(&mut npy)
                .map_err(|e| Error::format(&inner, format!("broken compressed member: {e}")))?;
            parse_npy(&npy, &inner)
        }
        m => Err(Error::format(
            &inner,
            format!("zip compression method {m} is not supported (np.savez and np.savez_compressed write 0 and 8)"),
        )),
    }
}

const STORED: usize = 0;
const DEFLATED: usize = 8;

/// One member of the archive: its name without `.npy`, how it is compressed, its bytes.
struct Member<'a> {
    name: String,
    method: usize,
    data: &'a [u8],
}

fn members<'a>(bytes: &'a [u8], path: &Path) -> Result<Vec<Member<'a>>> {
    let bad = |m: &str| Error::format(path, m.to_string());
    let mut at = 0;
    let mut found = Vec::new();
    while u32_at(bytes, at) == Some(LOCAL_HEADER) {
        let field =
            |offset: usize| u16_at(bytes, at + offset).ok_or_else(|| bad("truncated zip header"));
        let (flags, method) = (field(6)?, field(8)?);
        let (name_len, extra_len) = (field(26)?, field(28)?);
        let header_size = u32_at(bytes, at + 18).ok_or_else(|| bad("truncated zip header"))?;
        let start = at + 30 + name_len + extra_len;
        let name = bytes
            .get(at + 30..at + 30 + name_len)
            .ok_or_else(|| bad("truncated zip header"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let extra = bytes.get(at + 30 + name_len..start).unwrap_or_default();
        let size = match header_size {
            u32::MAX => zip64_size(extra).ok_or_else(|| bad("zip64 member without its size"))?,
            s => s as usize,
        };
        if flags & 8 != 0 {
            return Err(bad("streamed zip members (data descriptors) are not supported; save with np.savez to a file"));
        }
        // A corrupt zip64 size can overflow the end offset.
        let end = start
            .checked_add(size)
            .ok_or_else(|| bad("member size beyond any file"))?;
        let data = bytes
            .get(start..end)
            .ok_or_else(|| bad("truncated archive"))?;
        found.push(Member {
            name: name.strip_suffix(".npy").unwrap_or(&name).to_string(),
            method,
            data,
        });
        at = end;
    }
    if found.is_empty() {
        return Err(bad("not an .npz archive: no zip member at the start"));
    }
    Ok(found)
}

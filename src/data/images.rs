//! Image datasets: numpy arrays, MNIST IDX files, CIFAR-10 binary batches and
//! folders of PNGs, read into [N, C, H, W] f32 in [-1, 1] (the paper's
//! convention), with optional grayscale conversion and area downsampling for
//! CPU-scale runs; and the way back, from [-1, 1] to 8-bit pixels.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::cifar::read_cifar10;
use super::idx::read_idx_images;
use super::labels::{check_label_count, read_labels, write_labels};
use super::npy::{read_npy, write_npy};
use super::npz::read_npz;
use super::png_dir::read_png_dir;
use crate::io::{write_atomic, write_folder};
use crate::{Error, Result};

/// The file formats images are imported from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageFormat {
    /// numpy .npy: u8, f32 or f64, [N, H, W], [N, C, H, W] or [N, H, W, C].
    Npy,
    /// numpy .npz (stored or compressed): one array of the same kinds.
    Npz,
    /// MNIST IDX image file, optionally gzipped.
    Idx,
    /// CIFAR-10 binary batch, or the folder of data_batch_*.bin.
    Cifar10,
    /// A folder of same-size PNG images.
    PngDir,
}

/// How to import: the format and what to do to the images on the way in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageImport {
    pub format: ImageFormat,
    /// Output [height, width], area-averaged from the source (e.g. 28x28 -> 8x8).
    pub size: Option<[usize; 2]>,
    /// Convert RGB to one luma channel (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B).
    #[serde(default)]
    pub grayscale: bool,
    /// Keep only the first `limit` images.
    pub limit: Option<usize>,
    /// The array to read from an .npz holding several.
    pub array: Option<String>,
    /// A label file (MNIST IDX1 or .npy integers), one label per source
    /// image; CIFAR-10 records and PNG class folders carry their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
}

/// Images [N, C, H, W] in [-1, 1] and the shape they had in the file.
pub struct Images {
    pub pixels: Tensor,
    pub source_shape: Vec<usize>,
    /// One class label per image, when the source has them (THEORY §10).
    pub labels: Option<Vec<u32>>,
}

/// File written beside `data.npy` by [`write_dataset`]: where the images came from.
pub const SOURCE_FILE: &str = "source.toml";

impl ImageImport {
    /// Reads the images at `path` and converts them as asked.
    pub fn read(&self, path: &Path) -> Result<Images> {
        let (raw, own_labels) = match self.format {
            ImageFormat::Npy => (channels_first(read_npy(path)?, path)?, None),
            ImageFormat::Npz => (
                channels_first(read_npz(path, self.array.as_deref())?, path)?,
                None,
            ),
            ImageFormat::Idx => (read_idx_images(path)?, None),
            ImageFormat::Cifar10 => {
                let (images, labels) = read_cifar10(path)?;
                (images, Some(labels))
            }
            ImageFormat::PngDir => read_png_dir(path)?,
        };
        let source_shape = raw.dims().to_vec();
        let mut labels = match (&self.labels, own_labels) {
            (Some(file), None) => {
                let labels = read_labels(file)?;
                check_label_count(&labels, source_shape[0], file)?;
                Some(labels)
            }
            (Some(file), Some(_)) => {
                return Err(Error::format(
                    file,
                    "these images carry their own labels (CIFAR-10 records, PNG class folders); give no label file",
                ))
            }
            (None, own) => own,
        };
        let raw = match self.limit {
            Some(0) => return Err(Error::invalid("limit", 0, "keep at least one image")),
            Some(limit) => {
                let kept = limit.min(source_shape[0]);
                if let Some(labels) = labels.as_mut() {
                    labels.truncate(kept);
                }
                raw.narrow(0, 0, kept)?
            }
            None => raw,
        };
        let mut pixels = to_unit_range(&raw, path)?;
        if self.grayscale {
            pixels = grayscale(&pixels)?;
        }
        if let Some([h, w]) = self.size {
            pixels = resize_area(&pixels, h, w)?;
        }
        Ok(Images {
            pixels,
            source_shape,
            labels,
        })
    }
}

/// Writes `images` as the tool's data folder: `dir/data.npy` (f32 [N, C, H, W]
/// in [-1, 1], what [`super::load_examples`] reads), `dir/labels.npy` when
/// the images have labels, and `dir/source.toml`.
pub fn write_dataset(
    dir: &Path,
    images: &Images,
    import: &ImageImport,
    source: &Path,
) -> Result<()> {
    #[derive(Serialize)]
    struct Source<'a> {
        path: PathBuf,
        source_shape: &'a [usize],
        shape: &'a [usize],
        import: &'a ImageImport,
    }
    let record = Source {
        path: source.to_path_buf(),
        source_shape: &images.source_shape,
        shape: images.pixels.dims(),
        import,
    };
    let text = toml::to_string(&record).map_err(|e| Error::format(dir, e.to_string()))?;
    write_folder(dir, |dir| {
        write_npy(&dir.join("data.npy"), &images.pixels, DType::F32)?;
        if let Some(labels) = &images.labels {
            write_labels(&dir.join("labels.npy"), labels)?;
        }
        write_atomic(&dir.join(SOURCE_FILE), text.as_bytes())
    })
}

/// [N, H, W] -> [N, 1, H, W]; [N, C, H, W] with C in {1, 3} kept; [N, H, W, C]
/// with C in {1, 3} transposed. Anything else is an error naming the shape.
fn channels_first(t: Tensor, path: &Path) -> Result<Tensor> {
    let dims = t.dims().to_vec();
    let is_channels = |c: usize| c == 1 || c == 3;
    match dims.as_slice() {
        [n, h, w] => Ok(t.reshape((*n, 1, *h, *w))?),
        [_, c, _, _] if is_channels(*c) => Ok(t),
        [_, _, _, c] if is_channels(*c) => Ok(t.permute((0, 3, 1, 2))?.contiguous()?),
        _ => Err(Error::format(
            path,
            format!("shape {dims:?} is not images: expected [N, H, W], [N, C, H, W] or [N, H, W, C] with C = 1 or 3"),
        )),
    }
}

/// Bytes map to [-1, 1] by x / 127.5 - 1. Floats must already lie in [-1, 1]
/// (kept; some value below 0), [0, 1] or [0, 255] (mapped linearly).
fn to_unit_range(raw: &Tensor, path: &Path) -> Result<Tensor> {
    let x = raw.to_dtype(DType::F32)?;
    if raw.dtype() == DType::U8 {
        return Ok(x.affine(1.0 / 127.5, -1.0)?);
    }
    let flat = x.flatten_all()?;
    let (lo, hi) = (
        flat.min(0)?.to_scalar::<f32>()?,
        flat.max(0)?.to_scalar::<f32>()?,
    );
    Ok(match (lo, hi) {
        (lo, hi) if (-1.0..0.0).contains(&lo) && hi <= 1.0 => x,
        (lo, hi) if lo >= 0.0 && hi <= 1.0 => x.affine(2.0, -1.0)?,
        (lo, hi) if lo >= 0.0 && hi <= 255.0 => x.affine(1.0 / 127.5, -1.0)?,
        _ => {
            return Err(Error::format(
                path,
                format!("float pixels span [{lo}, {hi}]; expected [-1, 1], [0, 1] or [0, 255]"),
            ))
        }
    })
}

/// RGB [N, 3, H, W] -> luma [N, 1, H, W] (BT.601 weights); one channel is kept.
pub fn grayscale(x: &Tensor) -> Result<Tensor> {
    match x.dim(1)? {
        1 => Ok(x.clone()),
        3 => {
            let weights =
                Tensor::new(&[0.299f32, 0.587, 0.114], x.device())?.reshape((1, 3, 1, 1))?;
            Ok(x.broadcast_mul(&weights)?.sum_keepdim(1)?)
        }
        c => Err(Error::shape("image channels for grayscale", "1 or 3", c)),
    }
}

/// Area resampling [N, C, H, W] -> [N, C, h, w]: each output pixel is the mean
/// of the source over its footprint, fractional pixels weighted by their
/// overlap, so the image mean is preserved and integer factors average blocks.
pub fn resize_area(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (n, c, height, width) = x.dims4()?;
    if h == 0 || w == 0 {
        return Err(Error::invalid(
            "size",
            format!("{h}x{w}"),
            "needs both sides >= 1",
        ));
    }
    if (h, w) == (height, width) {
        return Ok(x.clone());
    }
    let device = x.device();
    let rows = area_weights(height, h, device)?; // [h, H]
    let cols = area_weights(width, w, device)?; // [w, W]
    let planes = x.reshape((n * c, height, width))?;
    let narrowed = planes.broadcast_matmul(&cols.t()?)?; // [NC, H, w]
    let out = narrowed
        .transpose(1, 2)?
        .contiguous()?
        .broadcast_matmul(&rows.t()?)?; // [NC, w, h]
    Ok(out.transpose(1, 2)?.contiguous()?.reshape((n, c, h, w))?)
}

/// [to, from] weights: row i spreads over source [i s, (i + 1) s), s = from / to.
fn area_weights(from: usize, to: usize, device: &Device) -> Result<Tensor> {
    let scale = from as f64 / to as f64;
    let mut weights = vec![0f32; to * from];
    for i in 0..to {
        let (a, b) = (i as f64 * scale, (i + 1) as f64 * scale);
        for p in (a.floor() as usize)..(b.ceil() as usize).min(from) {
            let overlap = (b.min(p as f64 + 1.0) - a.max(p as f64)).max(0.0);
            weights[i * from + p] = (overlap / scale) as f32;
        }
    }
    Ok(Tensor::from_vec(weights, (to, from), device)?)
}

/// [-1, 1] -> 8-bit pixels: round((x + 1) 127.5), clamped to 0..=255.
pub fn to_bytes(x: &Tensor) -> Result<Vec<u8>> {
    let values = x.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok(values
        .iter()
        .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
        .collect())
}

//! Where the patch denoisers' patches come from (THEORY §12): index tables
//! that cut k x k windows out of images, with circular or zero padding, and
//! the groups of sites whose patches compete in one softmax.
//!
//! Every cut is one `index_select` on the flattened pixels, with one extra
//! zero column for padding, so it runs in the images' dtype and autodiff
//! flows through it.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// The shape [C, H, W] of the images a patch denoiser works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// The flattened dimension C H W.
    pub fn dim(&self) -> usize {
        self.channels * self.pixels()
    }
}

/// The four patch-based closed forms of THEORY §12, named in configs as in specs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum PatchKind {
    /// LS: each pixel's window against the same window of every training image.
    Local,
    /// ELS: against every patch of every training image, circularly padded.
    Equivariant,
    /// ELS whose edge pixels match only patches at the same distance from
    /// the same edges (zero padding, so a window never wraps).
    EquivariantBoundary,
    /// Niedoba et al.: the mean over the windows inside the image that hold
    /// a pixel of each window's own same-location posterior mean.
    WindowMean,
}

impl PatchKind {
    pub const ALL: [PatchKind; 4] = [
        PatchKind::Local,
        PatchKind::Equivariant,
        PatchKind::EquivariantBoundary,
        PatchKind::WindowMean,
    ];

    /// The kind's name in denoiser specs.
    pub fn name(self) -> &'static str {
        match self {
            PatchKind::Local => "local",
            PatchKind::Equivariant => "els",
            PatchKind::EquivariantBoundary => "els-boundary",
            PatchKind::WindowMean => "window-mean",
        }
    }
}

impl std::str::FromStr for PatchKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        (Self::ALL.into_iter())
            .find(|k| k.name() == text)
            .ok_or_else(|| {
                Error::invalid("patch denoiser", text, format!("use {}", names.join(", ")))
            })
    }
}

impl TryFrom<String> for PatchKind {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<PatchKind> for String {
    fn from(kind: PatchKind) -> String {
        kind.name().to_string()
    }
}

/// The sites of one kind at one patch size: what is cut where, which sites
/// compete together, and how the softmax means become pixels.
pub(crate) struct Layout {
    /// For each site, each channel's window entries (kh kw of them):
    /// the source pixel, or `pixels` for padding. `[sites kh kw]`, u32.
    pub table: Tensor,
    pub sites: usize,
    /// Window entries per channel, kh kw.
    pub entries: usize,
    /// Sites whose patches share one softmax, batched by group size.
    pub batches: Vec<Vec<Vec<usize>>>,
    /// For the pixel kinds, the entry that is the site's own pixel; the
    /// window mean averages whole windows.
    pub centre: Option<usize>,
    /// The window mean's fold: for each pixel, each entry index of the
    /// windows holding it (or the zero column), and how many hold it.
    pub fold: Option<(Tensor, Tensor)>,
}

impl Layout {
    /// The layout of `kind` with odd patch size `k` on `shape`.
    pub fn new(kind: PatchKind, k: usize, shape: ImageShape, device: &Device) -> Result<Self> {
        if k.is_multiple_of(2) {
            return Err(Error::invalid(
                "patch size",
                k,
                "must be odd (a window has a centre)",
            ));
        }
        let (h, w, r) = (
            shape.height as isize,
            shape.width as isize,
            (k / 2) as isize,
        );
        let pad = shape.pixels() as u32;
        if kind == PatchKind::WindowMean {
            return Self::windows(k.min(shape.height), k.min(shape.width), shape, device);
        }
        let circular = kind == PatchKind::Equivariant;
        let mut table = Vec::with_capacity(shape.pixels() * k * k);
        for (py, px) in (0..h).flat_map(|y| (0..w).map(move |x| (y, x))) {
            for (dy, dx) in (-r..=r).flat_map(|y| (-r..=r).map(move |x| (y, x))) {
                let (y, x) = (py + dy, px + dx);
                table.push(match circular {
                    true => (y.rem_euclid(h) * w + x.rem_euclid(w)) as u32,
                    false if (0..h).contains(&y) && (0..w).contains(&x) => (y * w + x) as u32,
                    false => pad,
                });
            }
        }
        let sites: Vec<usize> = (0..shape.pixels()).collect();
        let groups = match kind {
            PatchKind::Equivariant => vec![sites],
            PatchKind::EquivariantBoundary => {
                let class = |p: isize, len: isize| (p.min(r), (len - 1 - p).min(r));
                let mut by_class: BTreeMap<_, Vec<usize>> = BTreeMap::new();
                for s in sites {
                    let (y, x) = ((s as isize) / w, (s as isize) % w);
                    by_class
                        .entry((class(y, h), class(x, w)))
                        .or_default()
                        .push(s);
                }
                by_class.into_values().collect()
            }
            _ => sites.into_iter().map(|s| vec![s]).collect(),
        };
        Ok(Self {
            table: Tensor::new(table, device)?,
            sites: shape.pixels(),
            entries: k * k,
            batches: by_size(groups),
            centre: Some(k * k / 2),
            fold: None,
        })
    }

    /// The window mean's layout: every kh x kw window inside the image.
    fn windows(kh: usize, kw: usize, shape: ImageShape, device: &Device) -> Result<Self> {
        let (rows, cols) = (shape.height - kh + 1, shape.width - kw + 1);
        let entries = kh * kw;
        let mut table = Vec::with_capacity(rows * cols * entries);
        for (i, j) in (0..rows).flat_map(|i| (0..cols).map(move |j| (i, j))) {
            for (dy, dx) in (0..kh).flat_map(|y| (0..kw).map(move |x| (y, x))) {
                table.push(((i + dy) * shape.width + j + dx) as u32);
            }
        }
        let zero = (rows * cols * entries) as u32;
        let (mut fold, mut counts) = (Vec::new(), Vec::new());
        for (py, px) in (0..shape.height).flat_map(|y| (0..shape.width).map(move |x| (y, x))) {
            let mut held = 0u32;
            for (dy, dx) in (0..kh).flat_map(|y| (0..kw).map(move |x| (y, x))) {
                let inside = py >= dy && px >= dx && py - dy < rows && px - dx < cols;
                held += inside as u32;
                fold.push(match inside {
                    true => (((py - dy) * cols + px - dx) * entries + dy * kw + dx) as u32,
                    false => zero,
                });
            }
            counts.push(held as f64);
        }
        let counts = Tensor::new(counts, device)?;
        Ok(Self {
            table: Tensor::new(table, device)?,
            sites: rows * cols,
            entries,
            batches: by_size((0..rows * cols).map(|s| vec![s]).collect()),
            centre: None,
            fold: Some((Tensor::new(fold, device)?, counts)),
        })
    }
}

/// Groups batched by size, so that each batch is one [G, rows, F] softmax.
fn by_size(groups: Vec<Vec<usize>>) -> Vec<Vec<Vec<usize>>> {
    let mut batches: BTreeMap<usize, Vec<Vec<usize>>> = BTreeMap::new();
    for g in groups {
        batches.entry(g.len()).or_default().push(g);
    }
    batches.into_values().collect()
}

/// Columns of `x` (`[B, C, L]`) picked by `table` (u32 indices into 0..=L,
/// L picking zero): `[B, C, table length]`.
pub(crate) fn gather(x: &Tensor, table: &Tensor) -> Result<Tensor> {
    let (b, c, _) = x.dims3()?;
    let zero = Tensor::zeros((b, c, 1), x.dtype(), x.device())?;
    Ok(Tensor::cat(&[x, &zero], 2)?.index_select(table, 2)?)
}

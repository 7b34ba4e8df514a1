//! The patch-based closed forms (THEORY §12): LS, ELS, boundary-aware ELS
//! and the window mean, each a softmax-weighted mean of training patches
//! per pixel (or per window), streamed like the empirical denoiser, over
//! the distinct training patches of each group, each weighted by how many
//! times it occurs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::Tensor;

use super::distinct::merge_equal;
use super::patches::{gather, ImageShape, Layout, PatchKind};
use super::softmax_mean::SoftmaxMean;
use super::{check_input, Denoiser, EmpiricalDenoiser, PatchSize};
use crate::{Error, Result};

/// A patch denoiser of training images `[N, C, H, W]`; inputs are rows of
/// C H W. The patches of each patch size are cut once, on first use.
pub struct PatchDenoiser {
    kind: PatchKind,
    shape: ImageShape,
    /// The training images as `[N, C, H W]`, in the dtype computed in.
    train: Tensor,
    size: PatchSize,
    prepared: Mutex<BTreeMap<usize, Arc<Prepared>>>,
}

/// Everything one patch size needs: the layout and, per batch of groups,
/// its sites `[G s]` and its softmax over the training patches.
struct Prepared {
    layout: Layout,
    batches: Vec<Batch>,
    /// Site j of the batched order is site `order[j]`; this inverts it.
    inverse: Tensor,
    /// Distinct training patches, summed over groups, and all of them.
    distinct: (usize, usize),
}

struct Batch {
    sites: Tensor,
    groups: usize,
    patches: SoftmaxMean,
}

impl PatchDenoiser {
    /// The denoiser of `kind` over `train` (`[N, C, H, W]`, computed in its
    /// dtype) with patch size k(sigma) = `size`.
    pub fn new(kind: PatchKind, train: &Tensor, size: PatchSize) -> Result<Self> {
        let shape = match train.dims() {
            &[n, channels, height, width] if n * channels * height * width > 0 => ImageShape {
                channels,
                height,
                width,
            },
            dims => {
                return Err(Error::shape(
                    "patch denoiser training images",
                    "[N, C, H, W]",
                    format!("{dims:?}"),
                ))
            }
        };
        let train = train.flatten_from(2)?.contiguous()?;
        let prepared = Mutex::new(BTreeMap::new());
        Ok(Self {
            kind,
            shape,
            train,
            size,
            prepared,
        })
    }

    pub fn shape(&self) -> ImageShape {
        self.shape
    }

    /// The patch size used at `sigma`.
    pub fn patch_size(&self, sigma: f64) -> Result<usize> {
        self.size.at(sigma)
    }

    /// How many distinct training patches of size `k` the softmaxes run
    /// over (summed over the groups that compete), and how many there are.
    pub fn distinct_patches(&self, k: usize) -> Result<(usize, usize)> {
        Ok(self.prepared(k)?.distinct)
    }

    /// The layout and training patches of patch size `k`, cut on first use.
    fn prepared(&self, k: usize) -> Result<Arc<Prepared>> {
        let mut cache = self
            .prepared
            .lock()
            .expect("no panic while preparing patches");
        if let Some(p) = cache.get(&k) {
            return Ok(p.clone());
        }
        let layout = Layout::new(self.kind, k, self.shape, self.train.device())?;
        let patches = cut(&layout, &self.train)?;
        let values = match layout.centre {
            Some(centre) => patches.narrow(3, centre, 1)?.squeeze(3)?,
            None => patches.flatten_from(2)?,
        };
        let patches = patches.flatten_from(2)?;
        let (mut batches, mut order, mut distinct) = (Vec::new(), Vec::new(), (0, 0));
        for groups in &layout.batches {
            let flat: Vec<u32> = groups.iter().flatten().map(|&s| s as u32).collect();
            order.extend(flat.iter().copied());
            let sites = Tensor::new(flat, self.train.device())?;
            let keys = regroup(&patches, &sites, groups.len())?;
            let values = regroup(&values, &sites, groups.len())?;
            let all = keys.dim(1)?;
            let (keys, values, counts) = merge_equal(&keys, &values)?;
            distinct.0 += counts
                .ne(0.0)?
                .to_dtype(candle_core::DType::U32)?
                .sum_all()?
                .to_scalar::<u32>()? as usize;
            distinct.1 += all * groups.len();
            let chunk = EmpiricalDenoiser::DEFAULT_CHUNK;
            let patches = SoftmaxMean::with_counts(keys, values, &counts, all, chunk)?;
            batches.push(Batch {
                sites,
                groups: groups.len(),
                patches,
            });
        }
        let mut inverse = vec![0u32; order.len()];
        for (j, &site) in order.iter().enumerate() {
            inverse[site as usize] = j as u32;
        }
        let inverse = Tensor::new(inverse, self.train.device())?;
        let prepared = Arc::new(Prepared {
            layout,
            batches,
            inverse,
            distinct,
        });
        cache.insert(k, prepared.clone());
        Ok(prepared)
    }
}

/// The patches of `images` (`[B, C, H W]`) at the layout's sites: `[B, sites, C, entries]`.
fn cut(layout: &Layout, images: &Tensor) -> Result<Tensor> {
    let (b, c, _) = images.dims3()?;
    let cut = gather(images, &layout.table)?.reshape((b, c, layout.sites, layout.entries))?;
    Ok(cut.permute((0, 2, 1, 3))?.contiguous()?)
}

/// `[B, sites, F]` to the rows of each group: `[G, B s, F]` for G groups of s sites.
fn regroup(per_site: &Tensor, sites: &Tensor, groups: usize) -> Result<Tensor> {
    let (b, _, f) = per_site.dims3()?;
    let s = sites.dim(0)? / groups;
    let picked = per_site.contiguous()?.index_select(sites, 1)?;
    let picked = picked.reshape((b, groups, s, f))?;
    Ok(picked.permute((1, 0, 2, 3))?.reshape((groups, b * s, f))?)
}

/// The inverse of [`regroup`]'s layout: `[G, B s, V]` to `[B, G s, V]`.
fn ungroup(per_group: &Tensor, b: usize) -> Result<Tensor> {
    let (g, rows, v) = per_group.dims3()?;
    let s = rows / b;
    Ok(per_group
        .reshape((g, b, s, v))?
        .permute((1, 0, 2, 3))?
        .reshape((b, g * s, v))?)
}

impl Denoiser for PatchDenoiser {
    /// Each pixel (or window) is the softmax mean over its competing training
    /// patches of -||x_patch - P||^2 / (2 sigma^2) (THEORY §12).
    fn denoise(&self, x: &Tensor, sigma: f64) -> Result<Tensor> {
        check_input(x, self.shape.dim(), sigma)?;
        let prepared = self.prepared(self.size.at(sigma)?)?;
        let layout = &prepared.layout;
        let (b, c, dtype) = (x.dim(0)?, self.shape.channels, self.train.dtype());
        let xs = x.to_dtype(dtype)?.to_device(self.train.device())?;
        let queries = cut(layout, &xs.reshape((b, c, self.shape.pixels()))?)?.flatten_from(2)?;
        let parts: Vec<Tensor> = (prepared.batches.iter())
            .map(|batch| {
                let rows = regroup(&queries, &batch.sites, batch.groups)?;
                ungroup(&batch.patches.mean(&rows, sigma)?, b)
            })
            .collect::<Result<_>>()?;
        let means = Tensor::cat(&parts, 1)?.index_select(&prepared.inverse, 1)?;
        let d = match &layout.fold {
            None => means.transpose(1, 2)?.contiguous()?,
            Some((fold, counts)) => {
                let windows = means.reshape((b, layout.sites, c, layout.entries))?;
                let windows = windows.permute((0, 2, 1, 3))?.flatten_from(2)?;
                let held = gather(&windows.contiguous()?, fold)?;
                let held = held.reshape((b, c, self.shape.pixels(), layout.entries))?;
                held.sum(3)?.broadcast_div(&counts.to_dtype(dtype)?)?
            }
        };
        Ok(d.reshape((b, self.shape.dim()))?
            .to_dtype(x.dtype())?
            .to_device(x.device())?)
    }

    fn dim(&self) -> usize {
        self.shape.dim()
    }
}

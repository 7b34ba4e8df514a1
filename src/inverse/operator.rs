//! Known linear measurement operators y = A x (THEORY §11): inpainting by a
//! mask or a hidden box, super-resolution by average pooling, and seeded
//! Gaussian random projections. Each is held as its dense matrix A [m, n]
//! with its pseudo-inverse A^+ = A^T (A A^T)^(-1), so every solver treats
//! them alike.

use std::path::PathBuf;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};
use faer::Mat;
use serde::Deserialize;

use crate::data::npy::read_npy;
use crate::data::permutation;
use crate::linalg::{spectral, symmetric_eigen, to_mat, to_tensor};
use crate::rng::{standard_normal, stream, Purpose};
use crate::{Error, Result};

/// An operator as the command line and configs name it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub enum OperatorSpec {
    /// `inpaint:MASK.npy`: keep the entries where the mask (shaped like one
    /// sample, or flat) is 1, drop those where it is 0.
    Inpaint(PathBuf),
    /// `inpaint-box:R0,C0,H,W`: hide the H x W box at row R0, column C0 of
    /// every channel of an image [C, H, W]; keep the rest.
    InpaintBox([usize; 4]),
    /// `inpaint-random:K,SEED`: keep K entries chosen by the seeded
    /// permutation of stream (SEED, Operator); for vectors as for images.
    InpaintRandom { keep: usize, seed: u64 },
    /// `downsample:F`: the mean of each F x F block of every channel.
    Downsample(usize),
    /// `project:M,SEED`: M Gaussian rows divided by sqrt(n), drawn from the
    /// stream (SEED, Operator).
    Project { rows: usize, seed: u64 },
}

const FORMS: &str =
    "inpaint:MASK.npy, inpaint-box:R0,C0,H,W, inpaint-random:K,SEED, downsample:F or project:M,SEED";

impl FromStr for OperatorSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::invalid("operator", text, format!("use {FORMS}"));
        let numbers = |list: &str| -> Result<Vec<u64>> {
            list.split(',')
                .map(|v| v.trim().parse::<u64>().map_err(|_| bad()))
                .collect()
        };
        let (kind, arguments) = text.split_once(':').ok_or_else(bad)?;
        match (kind, arguments) {
            ("inpaint", path) if !path.is_empty() => Ok(Self::Inpaint(path.into())),
            ("inpaint-box", list) => match numbers(list)?[..] {
                [r, c, h, w] => Ok(Self::InpaintBox([r, c, h, w].map(|v| v as usize))),
                _ => Err(bad()),
            },
            ("inpaint-random", list) => match numbers(list)?[..] {
                [k, seed] if k >= 1 => Ok(Self::InpaintRandom {
                    keep: k as usize,
                    seed,
                }),
                _ => Err(bad()),
            },
            ("downsample", factor) => match numbers(factor)?[..] {
                [f] if f >= 1 => Ok(Self::Downsample(f as usize)),
                _ => Err(bad()),
            },
            ("project", list) => match numbers(list)?[..] {
                [m, seed] if m >= 1 => Ok(Self::Project {
                    rows: m as usize,
                    seed,
                }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for OperatorSpec {
    /// The form `FromStr` reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inpaint(path) => write!(f, "inpaint:{}", path.display()),
            Self::InpaintBox([r, c, h, w]) => write!(f, "inpaint-box:{r},{c},{h},{w}"),
            Self::InpaintRandom { keep, seed } => write!(f, "inpaint-random:{keep},{seed}"),
            Self::Downsample(factor) => write!(f, "downsample:{factor}"),
            Self::Project { rows, seed } => write!(f, "project:{rows},{seed}"),
        }
    }
}

impl TryFrom<String> for OperatorSpec {
    type Error = Error;

    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

/// A linear operator A [m, n] on samples of one shape, with A^+.
#[derive(Debug)]
pub struct Operator {
    matrix: Tensor,
    pseudo_inverse: Tensor,
}

impl Operator {
    /// The operator of `spec` on samples shaped `sample_shape` (\[n\] or \[C, H, W\]).
    pub fn new(spec: &OperatorSpec, sample_shape: &[usize]) -> Result<Self> {
        let n: usize = sample_shape.iter().product();
        let kept_rows = |keep: &[bool]| {
            let kept: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
            Mat::from_fn(kept.len(), n, |r, j| f64::from(kept[r] == j))
        };
        let matrix = match spec {
            OperatorSpec::Inpaint(path) => kept_rows(&read_mask(path, sample_shape)?),
            OperatorSpec::InpaintBox([r0, c0, h, w]) => {
                let [_, height, width] = image_shape(sample_shape, "inpaint-box")?;
                if r0 + h > height || c0 + w > width {
                    return Err(Error::invalid(
                        "inpaint-box",
                        format!("{r0},{c0},{h},{w}"),
                        format!("the box must lie inside the {height}x{width} image"),
                    ));
                }
                let hidden = |i: usize| {
                    let (r, c) = ((i / width) % height, i % width);
                    (*r0..r0 + h).contains(&r) && (*c0..c0 + w).contains(&c)
                };
                kept_rows(&(0..n).map(|i| !hidden(i)).collect::<Vec<_>>())
            }
            OperatorSpec::InpaintRandom { keep, seed } => {
                if *keep > n {
                    return Err(Error::invalid(
                        "inpaint-random entries K",
                        keep,
                        format!("must be at most the data dimension {n}"),
                    ));
                }
                let order = permutation(n, &mut stream(*seed, Purpose::Operator, 0));
                let mut kept = vec![false; n];
                order[..*keep].iter().for_each(|&i| kept[i] = true);
                kept_rows(&kept)
            }
            OperatorSpec::Downsample(f) => pooling(sample_shape, *f)?,
            OperatorSpec::Project { rows, seed } => {
                if *rows > n {
                    return Err(Error::invalid(
                        "project rows M",
                        rows,
                        format!("must be at most the data dimension {n}"),
                    ));
                }
                let g = standard_normal(&mut stream(*seed, Purpose::Operator, 0), rows * n);
                let scale = (n as f64).sqrt().recip();
                Mat::from_fn(*rows, n, |i, j| g[i * n + j] * scale)
            }
        };
        if matrix.nrows() == 0 {
            return Err(Error::invalid(
                "operator",
                format!("{spec:?}"),
                "measures nothing (no entry kept)",
            ));
        }
        Self::from_matrix(&matrix)
    }

    /// A [m, n] of full row rank, with A^+ from the eigendecomposition of A A^T.
    pub fn from_matrix(a: &Mat<f64>) -> Result<Self> {
        let (values, basis) = symmetric_eigen(&(a * a.transpose()))?;
        let largest = values.last().copied().unwrap_or(0.0);
        if values[0] <= 1e-12 * largest {
            return Err(Error::invalid(
                "operator",
                format!("smallest eigenvalue of A A^T {:e}", values[0]),
                "A must have full row rank",
            ));
        }
        let reciprocals: Vec<f64> = values.iter().map(|v| v.recip()).collect();
        let inverse = spectral(&basis, &reciprocals);
        Ok(Self {
            matrix: to_tensor(a)?,
            pseudo_inverse: to_tensor(&(a.transpose() * inverse))?,
        })
    }

    /// A itself, [m, n].
    pub fn matrix(&self) -> Result<Mat<f64>> {
        to_mat(&self.matrix)
    }

    /// The number of measurements m.
    pub fn measured_dim(&self) -> usize {
        self.matrix.dims()[0]
    }

    /// The data dimension n.
    pub fn dim(&self) -> usize {
        self.matrix.dims()[1]
    }

    /// A x for every row of `x` [B, n], in the dtype of `x`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        times(x, &self.matrix.t()?, self.dim(), "operator input")
    }

    /// A^T r for every row of `r` [B, m].
    pub fn adjoint(&self, r: &Tensor) -> Result<Tensor> {
        times(r, &self.matrix, self.measured_dim(), "adjoint input")
    }

    /// A^+ y for every row of `y` [B, m]: the least-norm x with A x = y.
    pub fn pseudo_inverse(&self, y: &Tensor) -> Result<Tensor> {
        times(
            y,
            &self.pseudo_inverse.t()?,
            self.measured_dim(),
            "measurements",
        )
    }

    /// (I - A^+ A) x for every row of `x` [B, n]: the part the measurement
    /// does not see (its null-space component, THEORY §11).
    pub fn unmeasured(&self, x: &Tensor) -> Result<Tensor> {
        Ok((x - self.pseudo_inverse(&self.apply(x)?)?)?)
    }

    /// y = A x + noise_y e, e standard normal, row k's from stream (seed, Measurement, indices\[k\]).
    pub fn measure(&self, x: &Tensor, noise_y: f64, seed: u64, indices: &[u64]) -> Result<Tensor> {
        if !(noise_y.is_finite() && noise_y >= 0.0) {
            return Err(Error::invalid(
                "noise-y",
                noise_y,
                "must be finite and >= 0",
            ));
        }
        let m = self.measured_dim();
        let noise: Vec<f64> = indices
            .iter()
            .flat_map(|&k| standard_normal(&mut stream(seed, Purpose::Measurement, k), m))
            .collect();
        let noise = Tensor::from_vec(noise, (indices.len(), m), &Device::Cpu)?;
        let y = self.apply(&x.to_dtype(DType::F64)?.to_device(&Device::Cpu)?)?;
        Ok((y + (noise * noise_y)?)?.to_dtype(x.dtype())?)
    }
}

/// `x` [B, k] times `matrix` [k, out], in the dtype and on the device of `x`.
fn times(x: &Tensor, matrix: &Tensor, k: usize, what: &str) -> Result<Tensor> {
    match x.dims() {
        [_, width] if *width == k => {
            let m = matrix.to_dtype(x.dtype())?.to_device(x.device())?;
            Ok(x.matmul(&m)?)
        }
        dims => Err(Error::shape(what, format!("[B, {k}]"), format!("{dims:?}"))),
    }
}

fn image_shape(shape: &[usize], operator: &str) -> Result<[usize; 3]> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(Error::shape(
            format!("samples for {operator}"),
            "images [C, H, W]",
            format!("{shape:?}"),
        )),
    }
}

/// The average pooling matrix of F x F blocks, [C (H/F) (W/F), C H W].
fn pooling(shape: &[usize], f: usize) -> Result<Mat<f64>> {
    let [c, h, w] = image_shape(shape, "downsample")?;
    if h % f != 0 || w % f != 0 {
        return Err(Error::invalid(
            "downsample factor",
            f,
            format!("must divide the image's {h}x{w}"),
        ));
    }
    let (ho, wo) = (h / f, w / f);
    Ok(Mat::from_fn(c * ho * wo, c * h * w, |row, col| {
        let (ch, r, cc) = (col / (h * w), (col / w) % h, col % w);
        let block = ch * ho * wo + (r / f) * wo + cc / f;
        if block == row {
            1.0 / (f * f) as f64
        } else {
            0.0
        }
    }))
}

/// The 0/1 mask of `path`, shaped like one sample or flat, as "kept" flags.
fn read_mask(path: &std::path::Path, sample_shape: &[usize]) -> Result<Vec<bool>> {
    let mask = read_npy(path)?;
    let n: usize = sample_shape.iter().product();
    if mask.elem_count() != n {
        return Err(Error::format(
            path,
            format!(
                "mask has shape {:?}; the samples are {sample_shape:?}",
                mask.dims()
            ),
        ));
    }
    let values = mask.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    values
        .iter()
        .map(|&v| match v {
            1.0 => Ok(true),
            0.0 => Ok(false),
            _ => Err(Error::format(
                path,
                format!("mask entry {v} is neither 0 nor 1"),
            )),
        })
        .collect()
}

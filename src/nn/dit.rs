//! A small diffusion transformer (DiT, Peebles & Xie 2023): patch embedding,
//! blocks of multi-head self-attention and an MLP, each modulated by the
//! noise embedding through adaLN-zero, then unpatchify. Images [C, H, W] are
//! cut into `patch` x `patch` squares; vectors [n] into runs of `patch`
//! coordinates, so both are token sequences.

use candle_core::{Tensor, D};
use candle_nn::{linear, Init, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::embedding::{fourier_embedding, with_classes, zero_linear, ClassEmbedding};
use super::ops::{linear_forward, silu};
use super::Network;
use crate::{Error, Result};

/// Token width, blocks, attention heads and patch size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DitConfig {
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub patch: usize,
}

/// How examples become tokens: [C, H, W] images in p x p squares, or [n]
/// vectors in runs of p.
#[derive(Clone, Debug)]
enum Tokens {
    Image {
        c: usize,
        h: usize,
        w: usize,
        p: usize,
    },
    Vector {
        n: usize,
        p: usize,
    },
}

impl Tokens {
    fn of(shape: &[usize], p: usize) -> Result<Self> {
        let fits = |side: usize| p > 0 && side.is_multiple_of(p);
        match *shape {
            [c, h, w] if fits(h) && fits(w) => Ok(Tokens::Image { c, h, w, p }),
            [n] if fits(n) => Ok(Tokens::Vector { n, p }),
            _ => Err(Error::shape(
                "DiT input",
                format!(
                    "[C, H, W] with H and W multiples of the patch {p}, or [n] a multiple of it"
                ),
                format!("{shape:?}"),
            )),
        }
    }

    /// (number of tokens, values per token).
    fn size(&self) -> (usize, usize) {
        match *self {
            Tokens::Image { c, h, w, p } => ((h / p) * (w / p), c * p * p),
            Tokens::Vector { n, p } => (n / p, p),
        }
    }

    /// [B, ...] -> [B, L, P].
    fn patchify(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.dim(0)?;
        let (l, size) = self.size();
        Ok(match *self {
            Tokens::Image { c, h, w, p } => x
                .reshape(vec![b, c, h / p, p, w / p, p])?
                .permute(vec![0, 2, 4, 1, 3, 5])?
                .reshape((b, l, size))?,
            Tokens::Vector { .. } => x.reshape((b, l, size))?,
        })
    }

    /// [B, L, P] -> [B, ...], the inverse of [`Self::patchify`].
    fn unpatchify(&self, t: &Tensor) -> Result<Tensor> {
        let b = t.dim(0)?;
        Ok(match *self {
            Tokens::Image { c, h, w, p } => t
                .reshape(vec![b, h / p, w / p, c, p, p])?
                .permute(vec![0, 3, 1, 4, 2, 5])?
                .reshape((b, c, h, w))?,
            Tokens::Vector { n, .. } => t.reshape((b, n))?,
        })
    }
}

/// `layer` on every token of `x` [B, L, in].
fn per_token(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    let (b, l, width) = x.dims3()?;
    let y = linear_forward(layer, &x.reshape((b * l, width))?)?;
    Ok(y.reshape((b, l, y.dim(1)?))?)
}

/// Layer norm over the last dimension, without affine parameters (adaLN
/// supplies the shift and scale).
fn layer_norm(x: &Tensor) -> Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(centred.broadcast_div(&(var + 1e-6)?.sqrt()?)?)
}

/// x (1 + scale) + shift, with scale and shift [B, width] per example.
fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    let scale = (scale.unsqueeze(1)? + 1.0)?;
    Ok(x.broadcast_mul(&scale)?
        .broadcast_add(&shift.unsqueeze(1)?)?)
}

/// One transformer block: attention then MLP, each as x + gate f(modulated LN(x)).
struct Block {
    ada: Linear,
    qkv: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
}

impl Block {
    fn new(width: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Block {
            // adaLN-zero: the gates start at 0, so each block starts as the identity.
            ada: zero_linear(width, 6 * width, vb.pp("ada"))?,
            qkv: linear(width, 3 * width, vb.pp("qkv"))?,
            proj: linear(width, width, vb.pp("proj"))?,
            fc1: linear(width, 4 * width, vb.pp("fc1"))?,
            fc2: linear(4 * width, width, vb.pp("fc2"))?,
            heads,
        })
    }

    fn forward(&self, x: &Tensor, cond: &Tensor) -> Result<Tensor> {
        let m = linear_forward(&self.ada, cond)?.chunk(6, 1)?;
        let h = modulate(&layer_norm(x)?, &m[0], &m[1])?;
        let x = (x + self.attention(&h)?.broadcast_mul(&m[2].unsqueeze(1)?)?)?;
        let h = modulate(&layer_norm(&x)?, &m[3], &m[4])?;
        let h = per_token(&self.fc2, &per_token(&self.fc1, &h)?.gelu()?)?;
        Ok((&x + h.broadcast_mul(&m[5].unsqueeze(1)?)?)?)
    }

    /// Multi-head self-attention over the tokens of `x` [B, L, width].
    fn attention(&self, x: &Tensor) -> Result<Tensor> {
        let (b, l, width) = x.dims3()?;
        let head = width / self.heads;
        let qkv = per_token(&self.qkv, x)?
            .reshape((b, l, 3, self.heads, head))?
            .permute(vec![2, 0, 3, 1, 4])?;
        let part = |k: usize| -> Result<Tensor> { Ok(qkv.get(k)?.contiguous()?) };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        // scores[b, h, i, j] = <q_i, k_j> / sqrt(head), softmax over j.
        let scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? / (head as f64).sqrt())?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, l, width))?;
        per_token(&self.proj, &out)
    }
}

pub struct Dit {
    tokens: Tokens,
    embed: Linear,
    position: Tensor,
    noise: Linear,
    blocks: Vec<Block>,
    final_ada: Linear,
    output: Linear,
    classes: Option<ClassEmbedding>,
    width: usize,
}

impl Dit {
    /// The DiT for examples of `shape` (\[C, H, W\] or \[n\]).
    pub fn new(
        shape: &[usize],
        config: &DitConfig,
        classes: Option<usize>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let DitConfig {
            width,
            depth,
            heads,
            patch,
        } = *config;
        if width == 0 || depth == 0 || heads == 0 || !width.is_multiple_of(heads) {
            return Err(Error::invalid(
                "DiT size",
                format!("width {width}, depth {depth}, heads {heads}"),
                "need width, depth, heads >= 1 and heads dividing width",
            ));
        }
        let tokens = Tokens::of(shape, patch)?;
        let (l, size) = tokens.size();
        let init = Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let blocks = (0..depth)
            .map(|i| Block::new(width, heads, vb.pp(format!("block{i}"))))
            .collect::<Result<_>>()?;
        Ok(Dit {
            embed: linear(size, width, vb.pp("embed"))?,
            position: vb.get_with_hints((l, width), "position", init)?,
            noise: linear(width, width, vb.pp("noise"))?,
            blocks,
            final_ada: zero_linear(width, 2 * width, vb.pp("final_ada"))?,
            output: zero_linear(width, size, vb.pp("output"))?,
            classes: classes
                .map(|k| ClassEmbedding::new(k, width, vb.clone()))
                .transpose()?,
            tokens,
            width,
        })
    }
}

impl Network for Dit {
    fn forward(&self, x: &Tensor, c_noise: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let features = fourier_embedding(c_noise, self.width)?;
        let features = with_classes(features, self.classes.as_ref(), labels)?;
        // The conditioning every adaLN reads, through its own SiLU.
        let cond = silu(&linear_forward(&self.noise, &features)?)?;
        let mut h =
            per_token(&self.embed, &self.tokens.patchify(x)?)?.broadcast_add(&self.position)?;
        for block in &self.blocks {
            h = block.forward(&h, &cond)?;
        }
        let m = linear_forward(&self.final_ada, &cond)?.chunk(2, 1)?;
        let h = modulate(&layer_norm(&h)?, &m[0], &m[1])?;
        self.tokens.unpatchify(&per_token(&self.output, &h)?)
    }
}

//! The streaming softmax-weighted mean every kernel denoiser is made of
//! (THEORY §4, §12): for each query q, sum_i w_i v_i with
//! w = softmax_i((q . k_i - ||k_i||^2 / 2) / sigma^2), i.e. the softmax of
//! -||q - k_i||^2 / (2 sigma^2). Keys stream in blocks with a running
//! maximum, so memory is O(queries x block), never O(queries x keys).

use candle_core::{Device, Tensor, D};

use super::softmax_cpu::{self, BlockWeights};
use super::sparse_weights::weighted_sum;
use crate::Result;

/// Keys `[.., M, F]` and the values `[.., M, V]` their softmax averages; any
/// leading dimensions are independent groups (queries then are `[.., Q, F]`).
#[derive(Debug)]
pub(crate) struct SoftmaxMean {
    /// The keys transposed, `[.., F, M]`: the logits GEMM q k^T then reads
    /// its right operand row by row, which gemm packs fastest (at F = 3072,
    /// 165-167 GFLOP/s in f32 against 112-115 for row-major keys read
    /// transposed; BENCHMARKS.md, "Session 9").
    keys_t: Tensor,
    values: Tensor,
    /// ||k_i||^2 / 2, `[.., 1, M]`.
    half_sq_norm: Tensor,
    /// ln m_i, `[.., 1, M]`, where key i stands for m_i equal keys: its
    /// weight is m_i exp(l_i) (None: every m_i = 1).
    log_count: Option<Tensor>,
    /// The keys counted with their multiplicities, for the cutoff.
    counted: usize,
    /// The most keys per block.
    block: usize,
}

/// ln m of a key that stands for none (padding a group of fewer distinct
/// keys): finite, so no sum meets inf - inf, yet its weight is exactly 0.
pub(crate) const LOG_COUNT_ABSENT: f64 = -1e30;

/// One block of keys with their values, as [`SoftmaxMean::stream`] hands them out.
pub(crate) struct Block {
    /// `[.., F, c]`.
    keys_t: Tensor,
    pub values: Tensor,
    /// ||k_i||^2 / 2 - sigma^2 ln m_i, `[.., 1, c]`: the logit's offset.
    offset: Tensor,
}

/// Softmax sums over all keys, kept relative to a running maximum logit
/// `max` (`[.., Q, 1]`) so no raw logit is ever exponentiated.
pub(crate) struct Accumulated {
    pub max: Tensor,
    /// sum_i exp(l_i - max), `[.., Q, 1]`.
    pub total: Tensor,
}

/// Logits held at once, at most: 2^22 (16 MiB in f32, 32 MiB in f64) keeps
/// every batch of up to 512 rows at the full block of 8192 keys, and keeps
/// the blocks of the patch denoisers' many query rows (B x H x W) within
/// glibc's largest mmap threshold, so a binary that keeps freed memory
/// (`cli::set_jobs`) reuses them instead of faulting in fresh
/// pages (ELS at 28x28: 1.13 s a call, 1.27 s with 134 MB blocks at 2^25;
/// BENCHMARKS.md).
const LOGIT_BUDGET: usize = 1 << 22;

/// The fewest keys per block however many queries there are.
const MIN_BLOCK: usize = 64;

impl SoftmaxMean {
    /// Keys `[.., M, F]` (M > 0) and values `[.., M, V]`, at most `block` keys per block.
    pub fn new(keys: Tensor, values: Tensor, block: usize) -> Result<Self> {
        let half_sq_norm =
            (keys.sqr()?.sum_keepdim(D::Minus1)? * 0.5)?.transpose(D::Minus1, D::Minus2)?;
        Ok(Self {
            counted: keys.dims()[keys.rank() - 2],
            keys_t: keys.transpose(D::Minus1, D::Minus2)?.contiguous()?,
            values: values.contiguous()?,
            half_sq_norm: half_sq_norm.contiguous()?,
            log_count: None,
            block,
        })
    }

    /// As [`SoftmaxMean::new`], where key i stands for `counts[.., i]` equal
    /// keys (`[.., M]`, 0 for padding), `counted` of them in all per group:
    /// the same means as the keys repeated, at the cost of the distinct ones.
    pub fn with_counts(
        keys: Tensor,
        values: Tensor,
        counts: &Tensor,
        counted: usize,
        block: usize,
    ) -> Result<Self> {
        let log_count = counts
            .to_dtype(candle_core::DType::F64)?
            .log()?
            .maximum(LOG_COUNT_ABSENT)?
            .unsqueeze(counts.rank() - 1)?
            .to_dtype(keys.dtype())?;
        Ok(Self {
            log_count: Some(log_count),
            counted,
            ..Self::new(keys, values, block)?
        })
    }

    pub fn values(&self) -> &Tensor {
        &self.values
    }

    fn len(&self) -> usize {
        self.values.dims()[self.values.rank() - 2]
    }

    /// Logits l_i = (q . k_i - ||k_i||^2 / 2) / sigma^2 + ln m_i of one
    /// block at the `sigma` it was cut for, `[.., Q, c]`.
    pub fn logits(block: &Block, queries: &Tensor, sigma: f64) -> Result<Tensor> {
        let dot = queries.matmul(&block.keys_t)?;
        Ok((dot.broadcast_sub(&block.offset)? / (sigma * sigma))?)
    }

    /// The blocks of keys for `queries` at `sigma`: as large as the budget
    /// of logits allows.
    pub fn blocks(&self, queries: &Tensor, sigma: f64) -> Result<Vec<Block>> {
        let rows = queries.elem_count() / queries.dim(D::Minus1)?.max(1);
        let size = self.block.min((LOGIT_BUDGET / rows.max(1)).max(MIN_BLOCK));
        let (len, axis) = (self.len(), self.values.rank() - 2);
        (0..len)
            .step_by(size)
            .map(|start| {
                let take = size.min(len - start);
                // A column block of the keys: a strided view, which the CPU
                // GEMM reads in place; other backends want it contiguous.
                let keys_t = self.keys_t.narrow(axis + 1, start, take)?;
                let keys_t = match keys_t.device() {
                    Device::Cpu => keys_t,
                    _ => keys_t.contiguous()?,
                };
                let offset = self.half_sq_norm.narrow(axis + 1, start, take)?;
                let offset = match &self.log_count {
                    Some(l) => (offset - (l.narrow(axis + 1, start, take)? * (sigma * sigma))?)?,
                    None => offset,
                };
                Ok(Block {
                    keys_t,
                    values: self.values.narrow(axis, start, take)?.contiguous()?,
                    offset: offset.contiguous()?,
                })
            })
            .collect()
    }

    /// Streams over the blocks with a running max. For each block, `add` gets
    /// the block, p = exp(l - max) (`[.., Q, c]`) and the factor (`[.., Q, 1]`)
    /// by which every earlier sum must be rescaled, or `None` for the first block.
    pub fn stream(
        &self,
        queries: &Tensor,
        sigma: f64,
        mut add: impl FnMut(&Block, &Tensor, Option<&Tensor>) -> Result<()>,
    ) -> Result<Accumulated> {
        let mut acc: Option<Accumulated> = None;
        for block in self.blocks(queries, sigma)? {
            let weights = self.weights(&block, queries, sigma, acc.as_ref().map(|a| &a.max))?;
            let rescale = match &acc {
                Some(a) => Some((&a.max - &weights.max)?.exp()?),
                None => None,
            };
            add(&block, &weights.p, rescale.as_ref())?;
            let total = match (&acc, &rescale) {
                (Some(a), Some(r)) => ((&a.total * r)? + weights.total)?,
                _ => weights.total,
            };
            acc = Some(Accumulated {
                max: weights.max,
                total,
            });
        }
        Ok(acc.expect("a softmax mean has at least one key"))
    }

    /// One block's weights p = exp(l - max), with the running maximum over
    /// this block and `previous`, and sum_j p_j: by the fused CPU pass where
    /// it runs (`softmax_cpu`), else by candle's ops, which autodiff follows.
    fn weights(
        &self,
        block: &Block,
        queries: &Tensor,
        sigma: f64,
        previous: Option<&Tensor>,
    ) -> Result<BlockWeights> {
        if softmax_cpu::runs_here(queries) {
            let dot = queries.matmul(&block.keys_t)?;
            let cutoff = softmax_cpu::cutoff(self.counted, queries.dtype());
            return softmax_cpu::block_weights(&dot, &block.offset, sigma, previous, cutoff);
        }
        let logits = Self::logits(block, queries, sigma)?;
        // The shift is a constant of the softmax: no gradient flows through it.
        let block_max = logits.max_keepdim(D::Minus1)?.detach();
        let max = match previous {
            Some(m) => m.maximum(&block_max)?,
            None => block_max,
        };
        let p = logits.broadcast_sub(&max)?.exp()?;
        let total = p.sum_keepdim(D::Minus1)?;
        Ok(BlockWeights { p, max, total })
    }

    /// sum_i w_i v_i for every query, `[.., Q, V]`.
    pub fn mean(&self, queries: &Tensor, sigma: f64) -> Result<Tensor> {
        let mut sum: Option<Tensor> = None;
        let acc = self.stream(queries, sigma, |block, p, rescale| {
            let pv = weighted_sum(p, &block.values)?;
            sum = Some(match (sum.take(), rescale) {
                (Some(s), Some(r)) => (s.broadcast_mul(r)? + pv)?,
                _ => pv,
            });
            Ok(())
        })?;
        let sum = sum.expect("streamed at least one block");
        Ok(sum.broadcast_div(&acc.total)?)
    }
}

//! CPU kernels for what the networks spend their time in, as candle custom
//! ops with their own backward; each is tested against candle's own op
//! (tests/kernels.rs).

mod conv;
mod group_norm;
mod resample;

pub use conv::conv2d_same;
pub use group_norm::GroupNorm;
pub use resample::{avg_pool2x, upsample2x};

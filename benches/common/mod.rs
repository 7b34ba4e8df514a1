//! What the benches that time the crate beside a peer share: seeded data
//! and the peers' timing protocol.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use diffusion_regimes::rng::{normal_rows, sample_streams};

/// Seeded standard normals, [rows, cols], drawn on the CPU and moved to `device`.
pub fn normal(seed: u64, rows: usize, cols: usize, dtype: DType, device: &Device) -> Tensor {
    let mut streams = sample_streams(seed, &(0..rows as u64).collect::<Vec<_>>());
    let t = normal_rows(&mut streams, cols, dtype, &Device::Cpu).unwrap();
    t.to_device(device).unwrap()
}

/// Median seconds of `calls` calls (odd) after a warm-up, as the peers time
/// themselves: a median, since the shared machine's neighbours come and go.
pub fn median_seconds(calls: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..calls)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[calls / 2]
}

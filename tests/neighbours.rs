//! GEMM-based nearest-neighbour search against a brute-force loop.

mod common;

use common::{gaussian, rows};
use diffusion_regimes::metrics::nearest_two;

#[test]
fn nearest_two_matches_brute_force_for_every_chunk_size() {
    let train = gaussian(1, 0, 23, 6);
    let samples = gaussian(1, 1, 9, 6);
    let (t, s) = (rows(&train), rows(&samples));
    for chunk in [1, 2, 5, 23, 100] {
        let nn = nearest_two(&samples, &train, chunk).unwrap();
        for (b, x) in s.iter().enumerate() {
            let mut d: Vec<(f64, usize)> = t
                .iter()
                .enumerate()
                .map(|(i, y)| {
                    (
                        y.iter()
                            .zip(x)
                            .map(|(a, c)| (a - c).powi(2))
                            .sum::<f64>()
                            .sqrt(),
                        i,
                    )
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!((nn.nearest[b], nn.second[b]), (d[0].1, d[1].1));
            assert!((nn.nearest_distance[b] - d[0].0).abs() < 1e-10);
            assert!((nn.second_distance[b] - d[1].0).abs() < 1e-10);
        }
    }
}

#[test]
fn training_points_are_memorized_and_fresh_points_are_not() {
    let train = gaussian(2, 0, 50, 8);
    let copies = train.narrow(0, 10, 20).unwrap();
    let nn = nearest_two(&copies, &train, 16).unwrap();
    assert_eq!(nn.nearest, (10..30).collect::<Vec<_>>());
    assert_eq!(nn.ratio_memorized_fraction(), 1.0);
    // Fresh Gaussian points in n = 8 sit about as far from their first as their second neighbour.
    let fresh = gaussian(2, 1, 200, 8);
    assert!(
        nearest_two(&fresh, &train, 16)
            .unwrap()
            .ratio_memorized_fraction()
            < 0.05
    );
}

/// The f32 search (gemm called directly, row blocks scanned in parallel)
/// finds what the f64 tensor-op search finds on the same f32 values: the
/// same two winners and, recomputed in f64 from the same inputs, the same
/// distances. The chunk sizes split the
/// training set unevenly or not at all.
#[test]
fn the_f32_search_agrees_with_the_f64_search() {
    use candle_core::DType;
    let train = gaussian(3, 0, 300, 70).to_dtype(DType::F32).unwrap();
    let samples = gaussian(3, 1, 150, 70).to_dtype(DType::F32).unwrap();
    let wide = |t: &candle_core::Tensor| t.to_dtype(DType::F64).unwrap();
    for chunk in [7, 128, 4096] {
        let single = nearest_two(&samples, &train, chunk).unwrap();
        let double = nearest_two(&wide(&samples), &wide(&train), chunk).unwrap();
        assert_eq!(single, double, "chunk {chunk}");
    }
}

/// The f32 search sizes its row blocks by the thread count (one task per
/// thread), so pools of 1, 2 and 3 threads cut M = 1100 samples into blocks
/// of 1100, 550 and 367 rows; the winners and their distances are the same.
#[test]
fn the_f32_search_gives_the_same_neighbours_on_any_thread_count() {
    use candle_core::DType;
    let train = gaussian(5, 0, 300, 70).to_dtype(DType::F32).unwrap();
    let samples = gaussian(5, 1, 1100, 70).to_dtype(DType::F32).unwrap();
    for chunk in [7, 4096] {
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| nearest_two(&samples, &train, chunk).unwrap())
        };
        let one = on(1);
        assert_eq!(one, on(2), "chunk {chunk}, 2 threads");
        assert_eq!(one, on(3), "chunk {chunk}, 3 threads");
    }
}

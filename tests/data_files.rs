//! Array files and synthetic distributions saved to disk.

mod common;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{gaussian, max_abs_diff};
use diffusion_regimes::data::npy::{encode_npy, parse_npy, read_npy, write_npy};
use diffusion_regimes::data::{load_distribution, Spectrum, Synthetic, SyntheticSpec};
use diffusion_regimes::denoise::Denoiser;

#[test]
fn npy_round_trips_in_every_supported_dtype() {
    let dir = tempdir();
    let t = gaussian(1, 0, 3, 5);
    for dtype in [DType::F32, DType::F64] {
        let path = dir.join(format!("{dtype:?}.npy"));
        write_npy(&path, &t, dtype).unwrap();
        let back = read_npy(&path).unwrap();
        assert_eq!(back.dtype(), dtype);
        assert_eq!(back.dims(), &[3, 5]);
        assert!(
            max_abs_diff(&back, &t)
                < if dtype == DType::F32 {
                    1e-6
                } else {
                    0.0 + f64::EPSILON
                }
        );
    }
    let bytes = Tensor::new(&[1u8, 2, 255], &Device::Cpu).unwrap();
    let back = parse_npy(&encode_npy(&bytes, DType::U8).unwrap(), Path::new("u8.npy")).unwrap();
    assert_eq!(back.to_vec1::<u8>().unwrap(), vec![1, 2, 255]);
}

/// The header numpy itself writes for np.save(np.zeros((2, 3), np.float32)), version 1.0.
#[test]
fn reads_a_header_as_numpy_writes_it() {
    let mut bytes = b"\x93NUMPY\x01\x00v\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    let mut header = header.to_string();
    header.push_str(&" ".repeat(118 - header.len() - 1));
    header.push('\n');
    bytes.extend(header.as_bytes());
    bytes.extend((0..6).flat_map(|i| (i as f32).to_le_bytes()));
    let t = parse_npy(&bytes, Path::new("numpy.npy")).unwrap();
    assert_eq!(
        t.to_vec2::<f32>().unwrap(),
        vec![vec![0.0, 1.0, 2.0], vec![3.0, 4.0, 5.0]]
    );
}

#[test]
fn malformed_npy_files_give_errors_naming_the_file_and_problem() {
    let good = encode_npy(&gaussian(1, 1, 2, 2), DType::F64).unwrap();
    let path = Path::new("bad.npy");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() - 3].to_vec(), "truncated"),
        ([b"\x93NUMPX".as_slice(), &good[6..]].concat(), "magic"),
        (replace(&good, b"<f8", b"<c8"), "dtype"),
        (replace(&good, b"False", b"True "), "Fortran"),
    ];
    for (bytes, word) in cases {
        let e = parse_npy(&bytes, path).unwrap_err().to_string();
        assert!(e.contains("bad.npy") && e.contains(word), "{e}");
    }
    let mut nan = encode_npy(&gaussian(1, 1, 2, 2), DType::F64).unwrap();
    let at = nan.len() - 8;
    nan[at..].copy_from_slice(&f64::NAN.to_le_bytes());
    assert!(parse_npy(&nan, path)
        .unwrap_err()
        .to_string()
        .contains("finite"));
    let dir = tempdir();
    let with_nan = Tensor::new(&[1.0f64, f64::NAN], &Device::Cpu).unwrap();
    assert!(write_npy(&dir.join("nan.npy"), &with_nan, DType::F64).is_err());
    assert!(
        !dir.join("nan.npy").exists(),
        "no file is written for refused data"
    );
}

#[test]
fn saved_distribution_rebuilds_the_exact_denoiser() {
    let dir = tempdir();
    let specs = [
        SyntheticSpec::Molrg {
            ambient: 10,
            ranks: vec![2, 3],
            floor: 0.01,
        },
        SyntheticSpec::Gmm {
            ambient: 6,
            components: 3,
            mean_scale: 2.0,
            std: 0.3,
        },
        SyntheticSpec::Gaussian {
            ambient: 5,
            spectrum: Spectrum::PowerLaw {
                scale: 2.0,
                exponent: 1.5,
            },
        },
        SyntheticSpec::Gaussian {
            ambient: 5,
            spectrum: Spectrum::Isotropic { variance: 0.5 },
        },
    ];
    for (k, spec) in specs.into_iter().enumerate() {
        let dist = Synthetic::new(spec, 11).unwrap();
        let folder = dir.join(k.to_string());
        dist.save(&folder).unwrap();
        let loaded = load_distribution(&folder).unwrap();
        let x = gaussian(2, k as u64, 7, dist.mixture.dim());
        for sigma in [0.05, 1.0, 20.0] {
            assert_eq!(
                loaded.denoise(&x, sigma).unwrap().to_vec2::<f64>().unwrap(),
                dist.mixture
                    .denoise(&x, sigma)
                    .unwrap()
                    .to_vec2::<f64>()
                    .unwrap()
            );
        }
    }
}

#[test]
fn a_smaller_data_set_is_a_prefix_of_a_larger_one() {
    let dist = Synthetic::new(
        SyntheticSpec::Gmm {
            ambient: 4,
            components: 2,
            mean_scale: 1.0,
            std: 0.1,
        },
        3,
    )
    .unwrap();
    let big = dist.sample(100).unwrap();
    let small = dist.sample(30).unwrap();
    assert_eq!(
        big.narrow(0, 0, 30).unwrap().to_vec2::<f64>().unwrap(),
        small.to_vec2::<f64>().unwrap()
    );
    assert_eq!(
        dist.sample_rows(40, 5).unwrap().to_vec2::<f64>().unwrap(),
        big.narrow(0, 40, 5).unwrap().to_vec2::<f64>().unwrap()
    );
}

/// Draws match the distribution: MoLRG rows lie in the union of the subspaces
/// and have unit variance along each basis direction (5 standard errors).
#[test]
fn molrg_samples_lie_in_their_subspaces_with_unit_variance() {
    let dist = Synthetic::new(
        SyntheticSpec::Molrg {
            ambient: 12,
            ranks: vec![3, 4],
            floor: 0.0,
        },
        8,
    )
    .unwrap();
    let data = dist.sample(4000).unwrap();
    let comps = dist.mixture.components();
    let mut counts = [0usize; 2];
    let mut sum_sq = [0.0f64; 2];
    for row in data.to_vec2::<f64>().unwrap() {
        let coords: Vec<Vec<f64>> = comps
            .iter()
            .map(|c| {
                (0..c.basis.ncols())
                    .map(|j| (0..12).map(|i| c.basis[(i, j)] * row[i]).sum())
                    .collect()
            })
            .collect();
        let norm2: f64 = row.iter().map(|v| v * v).sum();
        let k = (0..2).find(|&k| {
            (coords[k].iter().map(|v| v * v).sum::<f64>() - norm2).abs() < 1e-9 * norm2.max(1.0)
        });
        let k = k.expect("every MoLRG sample lies in one component's subspace");
        counts[k] += 1;
        sum_sq[k] += coords[k].iter().map(|v| v * v).sum::<f64>();
    }
    for k in 0..2 {
        let variance = sum_sq[k] / (counts[k] * comps[k].basis.ncols()) as f64;
        let se = (2.0 / (counts[k] * comps[k].basis.ncols()) as f64).sqrt();
        assert!(
            (variance - 1.0).abs() < 5.0 * se,
            "component {k}: variance {variance}"
        );
        assert!((counts[k] as f64 / 4000.0 - 0.5).abs() < 5.0 * (0.25f64 / 4000.0).sqrt());
    }
}

/// `bytes` with the first occurrence of `from` replaced by the equally long `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "regimes-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use candle_core::{Device, Tensor};
use diffusion_regimes::rng::{standard_normal, stream, Purpose};

/// A [rows, cols] f64 tensor of standard normals from stream (seed, Data, index).
pub fn gaussian(seed: u64, index: u64, rows: usize, cols: usize) -> Tensor {
    let values = standard_normal(&mut stream(seed, Purpose::Data, index), rows * cols);
    Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
}

pub fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .to_vec2::<f64>()
        .unwrap()
}

/// max_ij |a_ij - b_ij| over tensors of any rank.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let as_f64 = |t: &Tensor| t.to_dtype(candle_core::DType::F64).unwrap();
    max_abs(&(as_f64(a) - as_f64(b)).unwrap())
}

/// sum_ij a_ij^2 in f64, over a tensor of any rank and float dtype.
pub fn sum_sq(a: &Tensor) -> f64 {
    a.to_dtype(candle_core::DType::F64)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// max |a_ij| over a tensor of any rank.
pub fn max_abs(a: &Tensor) -> f64 {
    a.to_dtype(candle_core::DType::F64)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// A fresh, empty folder under the system temp dir, unique to this process and `name`.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("regimes-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the `regimes` binary built for these tests.
pub fn regimes(args: &[&str]) -> std::process::Output {
    run(env!("CARGO_BIN_EXE_regimes"), args)
}

/// Runs one of the crate's binaries (`env!("CARGO_BIN_EXE_<name>")`) to completion.
pub fn run(binary: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary)
        .args(args)
        .output()
        .unwrap()
}

/// Exit code 0; otherwise the failure shows the command's stderr.
pub fn succeeds(o: &std::process::Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Exit code 2 and a one-line message containing every one of `words`.
pub fn fails_with(o: &std::process::Output, words: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for w in words {
        assert!(err.contains(w), "{err:?} should mention {w:?}");
    }
}

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// Distance from `y` to the affine subspace mean + span(basis) of a
/// low-rank mixture component: how far a point lies off it.
pub fn subspace_residual(c: &diffusion_regimes::denoise::Component, y: &[f64]) -> f64 {
    let centred: Vec<f64> = y.iter().zip(&c.mean).map(|(a, m)| a - m).collect();
    let coords: Vec<f64> = (0..c.basis.ncols())
        .map(|j| (0..y.len()).map(|i| c.basis[(i, j)] * centred[i]).sum())
        .collect();
    (0..y.len())
        .map(|i| {
            centred[i]
                - (0..coords.len())
                    .map(|j| c.basis[(i, j)] * coords[j])
                    .sum::<f64>()
        })
        .map(|r| r * r)
        .sum::<f64>()
        .sqrt()
}

/// Asserts that two sweep folders hold the same cells: every cell.json equal
/// but for its wall time (train_seconds), every samples.npy byte for byte,
/// and the same set of cells.
pub fn assert_same_cells(a: &std::path::Path, b: &std::path::Path) {
    use diffusion_regimes::sweep::CellResult;
    let files = |root: &std::path::Path| {
        let mut found = Vec::new();
        let mut todo = vec![root.join("cells")];
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                match path.is_dir() {
                    true => todo.push(path),
                    false => found.push(path.strip_prefix(root).unwrap().to_path_buf()),
                }
            }
        }
        found.retain(|p| p.ends_with("cell.json") || p.ends_with("samples.npy"));
        found.sort();
        found
    };
    let listed = files(a);
    assert!(!listed.is_empty(), "no cells in {}", a.display());
    assert_eq!(
        listed,
        files(b),
        "{} and {} hold different cells",
        a.display(),
        b.display()
    );
    for file in &listed {
        if file.ends_with("cell.json") {
            let read = |root: &std::path::Path| {
                let mut cell = CellResult::read(root.join(file).parent().unwrap()).unwrap();
                cell.train_seconds = None;
                cell
            };
            assert_eq!(read(a), read(b), "{}", file.display());
        } else {
            let bytes = |root: &std::path::Path| std::fs::read(root.join(file)).unwrap();
            assert!(bytes(a) == bytes(b), "{} differs", file.display());
        }
    }
}

/// The training segments a cell's cell.log records, as (worker, from, until):
/// its lines "UNIX_SECONDS HOST:PID trained steps FROM..UNTIL".
pub fn trained_segments(cell: &std::path::Path) -> Vec<(String, u64, u64)> {
    let log = std::fs::read_to_string(cell.join("cell.log")).unwrap_or_default();
    log.lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [_, worker, "trained", "steps", range] => {
                    let (from, until) = range.split_once("..")?;
                    Some((worker.to_string(), from.parse().ok()?, until.parse().ok()?))
                }
                _ => None,
            },
        )
        .collect()
}

/// A sweep's results without wall-clock times, which differ between runs.
pub fn comparable(results: &diffusion_regimes::sweep::Results) -> String {
    let mut r = results.clone();
    r.cells.iter_mut().for_each(|c| c.train_seconds = None);
    serde_json::to_string(&r).unwrap()
}

/// `count` byte images [count, 1, 8, 8] (pixel i is i * stride mod 256) in
/// `dir/images.npy`, and a base-8 U-Net trained 3 steps on the first `n`
/// through `regimes train`: its run folder.
pub fn train_tiny_unet(
    dir: &std::path::Path,
    count: usize,
    n: usize,
    stride: usize,
) -> std::path::PathBuf {
    let run = train_tiny_image_net(dir, count, n, stride, &["--arch", "unet"]);
    run.0
}

/// As [`train_tiny_unet`], with the network `arch` flags choose: the run
/// folder and what `regimes train` wrote to stderr.
pub fn train_tiny_image_net(
    dir: &std::path::Path,
    count: usize,
    n: usize,
    stride: usize,
    arch: &[&str],
) -> (std::path::PathBuf, String) {
    let pixels: Vec<u8> = (0..count * 64).map(|i| (i * stride % 256) as u8).collect();
    let images = Tensor::from_vec(pixels, (count, 1, 8, 8), &Device::Cpu).unwrap();
    let data = dir.join("images.npy");
    diffusion_regimes::data::npy::write_npy(&data, &images, candle_core::DType::U8).unwrap();
    let run = dir.join("run");
    let n = n.to_string();
    let mut args = vec!["train", "--data", s(&data), "--n", &n, "--width", "8"];
    args.extend_from_slice(arch);
    args.extend_from_slice(&["--steps", "3", "--batch", "2", "--out", s(&run)]);
    let o = regimes(&args);
    succeeds(&o);
    (run, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The registered framework called `name`.
pub fn by_name(name: &str) -> diffusion_regimes::framework::Framework {
    name.parse().unwrap()
}

/// `cases` proptest cases drawn from a fixed seed, so every run (and CI)
/// tests the same inputs: a failure reproduces, and a pass is not luck.
pub fn proptest_cases(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0),
        ..proptest::test_runner::Config::default()
    }
}

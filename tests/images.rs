//! Image data: every format reads the fixtures' pixels (written by
//! scripts/make_image_fixtures.py), grayscale and area resampling match
//! direct computations, malformed files are refused by `regimes data import`
//! with exit code 2 and no output, grids tile the pixels, and an image sweep
//! runs from one command into figures and sample grids.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::{fails_with, regimes, s, succeeds, temp_dir};
use diffusion_regimes::data::images::{grayscale, resize_area, to_bytes};
use diffusion_regimes::data::{load_examples, ImageFormat, ImageImport};
use diffusion_regimes::nn::{Arch, UnetConfig};
use diffusion_regimes::plot::{write_image_grid, GridRow};
use diffusion_regimes::sweep::SweepConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

fn plain(format: ImageFormat) -> ImageImport {
    ImageImport {
        format,
        size: None,
        grayscale: false,
        limit: None,
        array: None,
        labels: None,
    }
}

fn read(format: ImageFormat, name: &str) -> Tensor {
    plain(format).read(&fixture(name)).unwrap().pixels
}

/// The fixtures' pixel (n, c, y, x), as a byte.
fn pattern(n: usize, c: usize, y: usize, x: usize) -> f32 {
    ((37 * n + 11 * c + 5 * y + 3 * x) % 256) as f32
}

/// A [N, C, H, W] tensor from a byte function, mapped to [-1, 1].
fn expected(dims: [usize; 4], byte: impl Fn(usize, usize, usize, usize) -> f32) -> Tensor {
    let [n, c, h, w] = dims;
    let mut v = Vec::new();
    for i in 0..n {
        for k in 0..c {
            for y in 0..h {
                for x in 0..w {
                    v.push(byte(i, k, y, x) / 127.5 - 1.0);
                }
            }
        }
    }
    Tensor::from_vec(v, (n, c, h, w), &Device::Cpu).unwrap()
}

/// Pixels lie in [-1, 1], so one f32 rounding of a scaling is at most 1.2e-7.
const F32_ROUNDING: f64 = 1e-6;

fn assert_close(got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.dims(), want.dims());
    let diff = common::max_abs_diff(got, want);
    assert!(diff <= tol, "max difference {diff} > {tol}");
}

#[test]
fn every_format_reads_the_fixture_pixels_as_n_c_h_w_in_unit_range() {
    let gray = expected([12, 1, 6, 6], pattern);
    for (format, name) in [
        (ImageFormat::Npy, "gray_u8.npy"),
        (ImageFormat::Idx, "mnist-idx3-ubyte"),
        (ImageFormat::Idx, "mnist-idx3-ubyte.gz"),
    ] {
        assert_close(&read(format, name), &gray, F32_ROUNDING);
    }
    // Floats in [0, 1] (f32, channels last), in [-1, 1] (f64) and bytes in a
    // compressed .npz all give the same images.
    let rgb = expected([3, 3, 4, 5], pattern);
    assert_close(
        &read(ImageFormat::Npy, "rgb_nhwc_f32.npy"),
        &rgb,
        F32_ROUNDING,
    );
    assert_close(
        &read(ImageFormat::Npy, "rgb_nchw_f64.npy"),
        &rgb,
        F32_ROUNDING,
    );
    assert_close(&read(ImageFormat::Npz, "rgb.npz"), &rgb, F32_ROUNDING);
    // CIFAR-10: a folder reads every data_batch in order; a file, itself.
    let cifar = expected([3, 3, 32, 32], pattern);
    assert_close(&read(ImageFormat::Cifar10, "cifar10"), &cifar, F32_ROUNDING);
    let second = read(ImageFormat::Cifar10, "cifar10/data_batch_2.bin");
    assert_close(&second, &cifar.narrow(0, 2, 1).unwrap(), F32_ROUNDING);
    // PNGs: gray, RGB and RGBA files; the gray one fills all three channels,
    // alpha is dropped.
    let png = expected([3, 3, 4, 5], |n, c, y, x| {
        pattern(0, if n == 0 { 0 } else { c }, y, x)
    });
    assert_close(&read(ImageFormat::PngDir, "png"), &png, F32_ROUNDING);
    // --limit keeps the first images; the source shape is the file's.
    let mut first = plain(ImageFormat::Idx);
    first.limit = Some(5);
    let images = first.read(&fixture("mnist-idx3-ubyte.gz")).unwrap();
    assert_eq!(images.source_shape, vec![12, 1, 6, 6]);
    assert_close(&images.pixels, &gray.narrow(0, 0, 5).unwrap(), F32_ROUNDING);
}

/// Area resampling computed independently: nearest-upsample both sides to
/// L = lcm(from, to), then average blocks of L / to, in f64.
fn area_by_upsampling(x: &Tensor, h: usize, w: usize) -> Tensor {
    fn lcm(a: usize, b: usize) -> usize {
        let gcd = |mut a: usize, mut b: usize| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        a / gcd(a, b) * b
    }
    let (n, c, height, width) = x.dims4().unwrap();
    let v = x
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let (ly, lx) = (lcm(height, h), lcm(width, w));
    let (by, bx) = (ly / h, lx / w);
    let mut out = Vec::new();
    for plane in 0..n * c {
        for i in 0..h {
            for j in 0..w {
                let mut sum = 0.0;
                for u in i * by..(i + 1) * by {
                    for t in j * bx..(j + 1) * bx {
                        let (sy, sx) = (u * height / ly, t * width / lx);
                        sum += v[(plane * height + sy) * width + sx];
                    }
                }
                out.push(sum / (by * bx) as f64);
            }
        }
    }
    Tensor::from_vec(out, (n, c, h, w), &Device::Cpu).unwrap()
}

#[test]
fn area_resampling_and_grayscale_match_direct_computations() {
    let mnist_like = expected([2, 1, 28, 28], |n, _, y, x| {
        ((n * 91 + y * y * 7 + x * 13) % 256) as f32
    });
    let rgb = read(ImageFormat::Npy, "rgb_nchw_f64.npy");
    for (x, h, w) in [
        (&mnist_like, 14, 14),
        (&mnist_like, 8, 8),
        (&mnist_like, 7, 9),
        (&rgb, 2, 3),
        (&rgb, 3, 4),
    ] {
        let got = resize_area(x, h, w).unwrap().to_dtype(DType::F64).unwrap();
        // f32 weights and sums over at most 28 x 28 pixels of magnitude <= 1.
        assert_close(&got, &area_by_upsampling(x, h, w), 1e-5);
        // The mean is preserved.
        let mean = |t: &Tensor| {
            t.to_dtype(DType::F64)
                .unwrap()
                .mean_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        assert!((mean(&got) - mean(x)).abs() < 1e-5);
    }
    // BT.601 luma of one pixel, by hand: pixel (n=1, y=2, x=3) has bytes
    // R = 37 + 10 + 9 = 56, G = 67, B = 78.
    let luma = grayscale(&rgb).unwrap();
    assert_eq!(luma.dims(), &[3, 1, 4, 5]);
    let byte = 0.299 * 56.0 + 0.587 * 67.0 + 0.114 * 78.0;
    let got = luma
        .get(1)
        .unwrap()
        .get(0)
        .unwrap()
        .get(2)
        .unwrap()
        .get(3)
        .unwrap();
    let got = got
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!((got - (byte / 127.5 - 1.0)).abs() < 1e-6, "{got}");
}

#[test]
fn import_writes_the_dataset_and_refuses_malformed_files_with_exit_2_and_no_output() {
    let dir = temp_dir("images-import");
    let out = dir.join("digits");
    let run = regimes(&[
        "data",
        "import",
        s(&fixture("png")),
        "--format",
        "png-dir",
        "--size",
        "2x2",
        "--grayscale",
        "--out",
        s(&out),
    ]);
    succeeds(&run);
    let data = diffusion_regimes::data::load_examples(&out).unwrap();
    assert_eq!(data.dims(), &[3, 1, 2, 2]);
    let source = std::fs::read_to_string(out.join("source.toml")).unwrap();
    assert!(
        source.contains("png-dir") && source.contains("[3, 3, 4, 5]"),
        "{source}"
    );

    for (format, name, says) in [
        ("npy", "bad/truncated.npy", "truncated"),
        ("npy", "bad/nan.npy", "NaN"),
        ("npy", "bad/out_of_range.npy", "[300, 300]"),
        ("npy", "bad/five_dims.npy", "is not images"),
        ("npy", "bad/int16.npy", "unsupported dtype"),
        ("npz", "rgb_nhwc_f32.npy", "not an .npz"),
        ("idx", "bad/truncated-idx3-ubyte", "truncated"),
        ("idx", "bad/wrong-magic-idx3-ubyte", "magic"),
        ("idx", "bad/labels-idx1-ubyte", "label file"),
        ("idx", "bad/wrong-dims-idx3-ubyte", "[2, 6, 6] needs 72"),
        ("idx", "bad/truncated-idx3-ubyte.gz", "gzip"),
        ("cifar10", "bad/cifar_truncated.bin", "3073-byte"),
        ("cifar10", "bad/cifar_label.bin", "label 12"),
        ("cifar10", "png", "no data_batch"),
        ("png-dir", "bad/png_sizes", "one size"),
        ("png-dir", "bad/png_corrupt", "not a readable PNG"),
        ("png-dir", "bad/png_none", "no *.png"),
        ("png-dir", "gray_u8.npy", "not a folder"),
    ] {
        let target = dir.join(format!("bad-{}", name.replace('/', "-")));
        let run = regimes(&[
            "data",
            "import",
            s(&fixture(name)),
            "--format",
            format,
            "--out",
            s(&target),
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{name}: {stderr}");
        let file = Path::new(name).file_name().unwrap().to_str().unwrap();
        assert!(
            stderr.lines().count() == 1 && stderr.contains(file) && stderr.contains(says),
            "{name}: {stderr}"
        );
        assert!(!target.exists(), "{name} left {target:?} behind");
    }
}

#[test]
fn image_grids_tile_each_pixel_as_a_zoomed_block() {
    let dir = temp_dir("images-grid");
    let images = read(ImageFormat::Npy, "rgb_nchw_f64.npy"); // [3, 3, 4, 5]
    let rows = [
        GridRow::new("", images.clone()),
        GridRow::new("", images.narrow(0, 0, 2).unwrap()),
    ];
    let zoom = 2;
    write_image_grid(&dir.join("grid.png"), &rows, zoom).unwrap();
    let grid = read_back(&dir);
    // Tiles of 4x5 pixels zoomed 2x with 2-pixel white gaps.
    let (tile_h, tile_w) = (4 * zoom + zoom, 5 * zoom + zoom);
    assert_eq!(grid.dims(), &[1, 3, 2 * tile_h + zoom, 3 * tile_w + zoom]);
    let bytes = to_bytes(&grid).unwrap();
    let (gh, gw) = (2 * tile_h + zoom, 3 * tile_w + zoom);
    let at = |c: usize, y: usize, x: usize| bytes[(c * gh + y) * gw + x];
    for (r, k) in [(0, 0), (0, 2), (1, 1)] {
        for c in 0..3 {
            for y in 0..4 * zoom {
                for x in 0..5 * zoom {
                    let want = pattern(k, c, y / zoom, x / zoom) as u8;
                    assert_eq!(at(c, zoom + r * tile_h + y, zoom + k * tile_w + x), want);
                }
            }
        }
    }
    // Gaps, and the missing third image of row 1, are white.
    assert_eq!(at(0, 0, 0), 255);
    assert_eq!(at(1, zoom + tile_h + 1, zoom + 2 * tile_w + 1), 255);
}

#[test]
fn labelled_grids_name_each_row_in_a_left_margin() {
    let dir = temp_dir("images-grid-labels");
    let images = read(ImageFormat::Npy, "gray_u8.npy")
        .narrow(0, 0, 4)
        .unwrap(); // [4, 1, 6, 6]
    let zoom = 4;
    let rows = [
        GridRow::new("mlp-w64-d4-s0", images.clone()),
        GridRow::new("", images.clone()),
    ];
    write_image_grid(&dir.join("grid.png"), &rows, zoom).unwrap();
    let grid = read_back(&dir);
    let (tile_h, tile_w) = (6 * zoom + zoom, 6 * zoom + zoom);
    let (gh, gw) = (grid.dim(2).unwrap(), grid.dim(3).unwrap());
    assert_eq!((grid.dim(1).unwrap(), gh), (3, 2 * tile_h + zoom));
    let left = gw - (4 * tile_w + zoom);
    assert!(left > 0, "a labelled grid has a margin");
    let bytes = to_bytes(&grid).unwrap();
    let at = |c: usize, y: usize, x: usize| bytes[(c * gh + y) * gw + x];
    // The gray tiles sit right of the margin, equal in all three planes.
    let gray = to_bytes(&images).unwrap();
    for (r, k) in [(0, 0), (1, 3)] {
        for y in 0..6 * zoom {
            for x in 0..6 * zoom {
                let want = gray[(k * 6 + y / zoom) * 6 + x / zoom];
                for c in 0..3 {
                    let (y, x) = (zoom + r * tile_h + y, left + zoom + k * tile_w + x);
                    assert_eq!(at(c, y, x), want, "row {r} image {k} at ({y}, {x})");
                }
            }
        }
    }
    // Text is drawn in the first row's band of the margin, none in the second's.
    let dark = |rows: std::ops::Range<usize>| {
        rows.flat_map(|y| (0..left).map(move |x| (y, x)))
            .filter(|&(y, x)| at(0, y, x) < 128)
            .count()
    };
    assert!(dark(0..tile_h) > 10, "the label is drawn");
    assert_eq!(dark(tile_h + zoom..gh), 0, "an empty label draws nothing");
}

#[test]
fn regimes_grid_shows_samples_over_their_nearest_training_images() {
    let dir = temp_dir("images-grid-cli");
    let images = fixture("rgb_nchw_f64.npy"); // [3, 3, 4, 5]
    let grid = dir.join("g.png");
    let run = regimes(&[
        "grid",
        s(&images),
        "--train",
        s(&images),
        "--columns",
        "2",
        "--zoom",
        "1",
        "--out",
        s(&grid),
    ]);
    succeeds(&run);
    // Rows: samples 0-1, their nearest, sample 2, its nearest; 4x5 tiles,
    // 1-pixel gaps, right of the labels' margin.
    let pixels = read_back(&dir);
    let left = pixels.dim(3).unwrap() - (2 * 6 + 1);
    assert_eq!(pixels.dims(), &[1, 3, 4 * 5 + 1, left + 2 * 6 + 1]);
    assert!(left > 0, "rows are labelled");
    // Each sample is its own nearest training image.
    let tiles = pixels.narrow(3, left, 2 * 6 + 1).unwrap();
    let (samples, nearest) = (
        tiles.narrow(2, 1, 4).unwrap(),
        tiles.narrow(2, 6, 4).unwrap(),
    );
    assert_eq!(common::max_abs_diff(&samples, &nearest), 0.0);

    let run = regimes(&[
        "grid",
        s(&fixture("gray_u8.npy")),
        "--out",
        s(&dir.join("x.png")),
    ]);
    fails_with(&run, &["gray_u8.npy", "not images"]);
    assert!(!dir.join("x.png").exists());
}

fn read_back(dir: &Path) -> Tensor {
    plain(ImageFormat::PngDir).read(dir).unwrap().pixels
}

const IMAGE_SWEEP: &str = r#"
name = "tiny-images"
ns = [2, 4]
[data]
file = "not-here/train-images-idx3-ubyte.gz"
import = { format = "idx", size = [4, 4] }
[[models]]
kind = "mlp"
width = 16
depth = 1
[train]
steps = 10
batch = 4
lr = 1e-3
warmup = 2
[sampling]
samples = 6
schedule = { steps = 4, sigma_min = 0.01, sigma_max = 10.0, rho = 7.0 }
[metrics]
gap_sigmas = [0.1, 1.0]
gap_points = 4
resamples = 20
"#;

#[test]
fn an_image_sweep_runs_from_one_command_into_figures_and_sample_grids() {
    let dir = temp_dir("images-sweep");
    let config = dir.join("images.toml");
    std::fs::write(&config, IMAGE_SWEEP).unwrap();
    let sweep = |args: &[&str]| common::run(env!("CARGO_BIN_EXE_regimes_sweep"), args);
    // Without --data the config's file is missing: one line naming it, no output.
    let out = dir.join("out");
    fails_with(&sweep(&[s(&config), "--out", s(&out)]), &["not-here"]);
    #[cfg(not(feature = "cuda"))]
    {
        let run = sweep(&[s(&config), "--device", "cuda", "--out", s(&out)]);
        fails_with(&run, &["without CUDA"]);
    }
    assert!(!out.exists());
    let data = fixture("mnist-idx3-ubyte.gz");
    let run = sweep(&[s(&config), "--data", s(&data), "--out", s(&out)]);
    succeeds(&run);
    assert!(out.join("b_generalization.png").exists());
    // Per N: (empirical, mlp) x (samples, nearest training images) = 4 rows
    // of 6 samples, 4x4 pixels zoomed 4x with 4-pixel gaps, right of the
    // labels' margin (a labelled grid is RGB).
    let tiles_w = 6 * 20 + 4;
    let mut tiles = Vec::new();
    for n in [2, 4] {
        let grid_dir = dir.join(format!("grid{n}"));
        std::fs::create_dir_all(&grid_dir).unwrap();
        std::fs::copy(
            out.join(format!("samples_n{n:05}.png")),
            grid_dir.join("g.png"),
        )
        .unwrap();
        let grid = read_back(&grid_dir);
        let left = grid.dim(3).unwrap() - tiles_w;
        assert_eq!(grid.dims(), &[1, 3, 4 * 20 + 4, left + tiles_w]);
        tiles.push(grid.narrow(3, left, tiles_w).unwrap());
    }
    // The empirical denoiser reproduces training images: its sample row and
    // its nearest-image row are the same pixels up to 8-bit rounding.
    let sample_row = tiles[0].narrow(2, 4, 16).unwrap();
    let nearest_row = tiles[0].narrow(2, 24, 16).unwrap();
    assert!(common::max_abs_diff(&sample_row, &nearest_row) <= 2.0 / 127.5 + 1e-6);
}

#[test]
fn training_time_reads_its_images_from_data() {
    let dir = temp_dir("images-training-time");
    let config = dir.join("time.toml");
    // IMAGE_SWEEP nested under [sweep], its tables renamed to match.
    let sweep: Vec<String> = IMAGE_SWEEP
        .lines()
        .map(|line| match line.strip_prefix("[[") {
            Some(table) => format!("[[sweep.{table}"),
            None => line.replacen('[', "[sweep.", usize::from(line.starts_with('['))),
        })
        .collect();
    let toml = format!("checkpoints = [4, 8]\n[sweep]{}", sweep.join("\n"));
    std::fs::write(&config, toml).unwrap();
    let time = |args: &[&str]| common::run(env!("CARGO_BIN_EXE_training_time"), args);
    let out = dir.join("out");
    fails_with(&time(&[s(&config), "--out", s(&out)]), &["not-here"]);
    let data = fixture("mnist-idx3-ubyte.gz");
    let run = time(&[s(&config), "--data", s(&data), "--out", s(&out)]);
    succeeds(&run);
    let csv = std::fs::read_to_string(out.join("training_time.csv")).unwrap();
    // mlp at N = 2 and 4, checkpoints 4 and 8, two gap sigmas; no truth for file data.
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.ends_with(',')), "{csv}");
}

#[test]
fn the_image_sweep_configs_parse_and_the_gpu_one_is_the_papers_setting() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/configs");
    let load = |name: &str| SweepConfig::load(&configs.join(name)).unwrap();
    for name in ["images_mnist_cpu.toml", "images_cifar10_cpu.toml"] {
        let c = load(name);
        assert_eq!(c.ns, (4..=11).map(|k| 1 << k).collect::<Vec<_>>(), "{name}");
        assert_eq!(c.data.import.as_ref().unwrap().size, Some([8, 8]), "{name}");
    }
    let mnist16 = load("images_mnist16_cpu.toml");
    assert_eq!(mnist16.data.import.as_ref().unwrap().size, Some([16, 16]));
    let unets = mnist16
        .models
        .iter()
        .filter(|m| m.arch.label().starts_with("unet"));
    assert_eq!(unets.count(), 2, "two U-Net widths");
    assert_eq!(mnist16.train.budgets, [750, 1500, 3000]);
    let gpu = load("images_cifar10_gpu.toml");
    assert_eq!(gpu.ns, (6..=15).map(|k| 1 << k).collect::<Vec<_>>());
    let widths: Vec<String> = gpu.models.iter().map(|m| m.arch.label()).collect();
    for base in ["b64", "b128", "b256"] {
        assert!(widths.iter().any(|w| w.contains(base)), "{widths:?}");
    }
    assert_eq!(gpu.data.import.unwrap().size, None, "32x32 as stored");
    // The GPU check's one cell (scripts/gpu_check.sh): a 32x32 RGB U-Net on
    // synthetic images, no data file (the GPU host has no network).
    let check = load("gpu_check.toml");
    assert_eq!(
        (check.ns.as_slice(), check.models.len()),
        ([64].as_slice(), 1)
    );
    assert_eq!(check.data.shape, Some(vec![3, 32, 32]));
    assert!(check.data.file.is_none());
}

#[test]
fn a_sweep_reads_an_n_h_w_array_as_the_grayscale_images_data_import_reads() {
    let loaded = load_examples(&fixture("gray_u8.npy")).unwrap();
    let imported = read(ImageFormat::Npy, "gray_u8.npy");
    assert_eq!(loaded.dims(), [12, 1, 6, 6]);
    // Bytes map by x * (2 / 255) - 1 here and x / 127.5 - 1 there: equal up
    // to f32 rounding of values in [-1, 1] (a few 1e-8).
    assert_close(&loaded, &imported, 1e-6);
    let unet = Arch::Unet(UnetConfig::with_base(8));
    assert_eq!(unet.input_shape(&loaded.dims()[1..]).unwrap(), [1, 6, 6]);
}

/// Labels come with the images: CIFAR-10's from its records' first bytes,
/// MNIST's from an IDX1 file given with --labels, cut by --limit like the
/// images, written as labels.npy; a label file of the wrong length is an
/// error naming it, with no output.
#[test]
fn imports_keep_their_labels() {
    let batches = ["cifar10/data_batch_1.bin", "cifar10/data_batch_2.bin"];
    let first_bytes: Vec<u32> = batches
        .iter()
        .flat_map(|b| {
            let bytes = std::fs::read(fixture(b)).unwrap();
            bytes
                .chunks(3073)
                .map(|r| u32::from(r[0]))
                .collect::<Vec<_>>()
        })
        .collect();
    let cifar = plain(ImageFormat::Cifar10)
        .read(&fixture("cifar10"))
        .unwrap();
    assert_eq!(cifar.labels.as_deref(), Some(first_bytes.as_slice()));
    assert_eq!(
        plain(ImageFormat::Idx)
            .read(&fixture("mnist-idx3-ubyte"))
            .unwrap()
            .labels,
        None
    );
    let dir = temp_dir("images-labels");
    let idx1 = |labels: &[u8]| {
        let mut bytes = vec![0, 0, 0x08, 1];
        bytes.extend((labels.len() as u32).to_be_bytes());
        bytes.extend(labels);
        bytes
    };
    let digits: Vec<u8> = (0..12).map(|i| (i * 7 % 10) as u8).collect();
    let labels = dir.join("labels-idx1-ubyte");
    std::fs::write(&labels, idx1(&digits)).unwrap();
    let out = dir.join("digits");
    succeeds(&regimes(&[
        "data",
        "import",
        s(&fixture("mnist-idx3-ubyte")),
        "--format",
        "idx",
        "--labels",
        s(&labels),
        "--limit",
        "5",
        "--out",
        s(&out),
    ]));
    let written = diffusion_regimes::data::read_labels(&out.join("labels.npy")).unwrap();
    let expected: Vec<u32> = digits[..5].iter().map(|&d| u32::from(d)).collect();
    assert_eq!(written, expected);
    let short = dir.join("three-idx1-ubyte");
    std::fs::write(&short, idx1(&[1, 2, 3])).unwrap();
    let refused = dir.join("refused");
    let run = regimes(&[
        "data",
        "import",
        s(&fixture("mnist-idx3-ubyte")),
        "--format",
        "idx",
        "--labels",
        s(&short),
        "--out",
        s(&refused),
    ]);
    fails_with(&run, &["three-idx1-ubyte", "3 labels for 12 examples"]);
    assert!(!refused.exists());
}

/// A PNG folder of class subfolders reads subfolder after subfolder in name
/// order, each image labelled with its subfolder's position, the pixels those
/// of each subfolder read alone; `data import` keeps the labels.
#[test]
fn png_class_subfolders_are_the_labels() {
    let dir = temp_dir("png-classes");
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(fixture("png"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 3);
    let classes = dir.join("classes");
    // "b-dog" holds two images, "a-cat" one: the order is the names', not the sizes'.
    for (class, picks) in [("b-dog", &pngs[..2]), ("a-cat", &pngs[2..])] {
        let sub = classes.join(class);
        std::fs::create_dir_all(&sub).unwrap();
        for p in picks {
            std::fs::copy(p, sub.join(p.file_name().unwrap())).unwrap();
        }
    }
    let images = plain(ImageFormat::PngDir).read(&classes).unwrap();
    assert_eq!(images.labels.as_deref(), Some(&[0, 1, 1][..]));
    let alone = |class: &str| {
        plain(ImageFormat::PngDir)
            .read(&classes.join(class))
            .unwrap()
            .pixels
    };
    let want = Tensor::cat(&[alone("a-cat"), alone("b-dog")], 0).unwrap();
    assert_close(&images.pixels, &want, 0.0);
    let out = dir.join("imported");
    succeeds(&regimes(&[
        "data",
        "import",
        s(&classes),
        "--format",
        "png-dir",
        "--out",
        s(&out),
    ]));
    let written = diffusion_regimes::data::read_labels(&out.join("labels.npy")).unwrap();
    assert_eq!(written, [0, 1, 1]);
    let empty = dir.join("empty");
    std::fs::create_dir_all(empty.join("a")).unwrap();
    let refused = plain(ImageFormat::PngDir).read(&empty).err().unwrap();
    assert!(refused.to_string().contains("nor subfolders"), "{refused}");
}

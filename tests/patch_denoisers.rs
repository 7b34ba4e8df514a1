//! The patch closed forms and the KDE denoiser (THEORY §12) against slow
//! direct loops written from the definitions, their reductions to the
//! empirical denoiser (THEORY §4), and ELS's equivariance.

mod common;

use candle_core::{DType, Tensor};
use common::{gaussian, max_abs, max_abs_diff, rows};
use diffusion_regimes::denoise::{
    Component, Denoiser, EmpiricalDenoiser, ImageShape, KdeDenoiser, Mixture, PatchDenoiser,
    PatchKind, PatchSize,
};
use diffusion_regimes::spec::DenoiserSpec;
use faer::Mat;

const KINDS: [PatchKind; 4] = [
    PatchKind::Local,
    PatchKind::Equivariant,
    PatchKind::EquivariantBoundary,
    PatchKind::WindowMean,
];

/// `count` images [C, H, W] of standard normals, and their rows.
fn images(seed: u64, index: u64, count: usize, shape: ImageShape) -> (Tensor, Tensor) {
    let rows = gaussian(seed, index, count, shape.dim());
    let images = rows
        .reshape((count, shape.channels, shape.height, shape.width))
        .unwrap();
    (images, rows)
}

fn shape(channels: usize, height: usize, width: usize) -> ImageShape {
    ImageShape {
        channels,
        height,
        width,
    }
}

fn patch(kind: PatchKind, train: &Tensor, k: usize) -> PatchDenoiser {
    PatchDenoiser::new(kind, train, PatchSize::Fixed(k)).unwrap()
}

/// Pixel (y, x) of channel c of a flattened image, 0 outside unless circular.
fn pixel(image: &[f64], s: ImageShape, c: usize, y: isize, x: isize, circular: bool) -> f64 {
    let (h, w) = (s.height as isize, s.width as isize);
    let (y, x) = match circular {
        true => (y.rem_euclid(h), x.rem_euclid(w)),
        false if (0..h).contains(&y) && (0..w).contains(&x) => (y, x),
        false => return 0.0,
    };
    image[c * s.pixels() + (y * w + x) as usize]
}

/// The kh x kw window with top-left (y, x), all channels.
fn window(
    image: &[f64],
    s: ImageShape,
    (y, x): (isize, isize),
    (kh, kw): (usize, usize),
    circular: bool,
) -> Vec<f64> {
    let mut out = Vec::new();
    for c in 0..s.channels {
        for dy in 0..kh as isize {
            for dx in 0..kw as isize {
                out.push(pixel(image, s, c, y + dy, x + dx, circular));
            }
        }
    }
    out
}

/// Softmax over candidates of -||query - patch||^2 / (2 sigma^2), averaging `value`s.
fn softmax_mean(query: &[f64], candidates: &[(Vec<f64>, Vec<f64>)], sigma: f64) -> Vec<f64> {
    let logits: Vec<f64> = (candidates.iter())
        .map(|(p, _)| {
            -query
                .iter()
                .zip(p)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                / (2.0 * sigma * sigma)
        })
        .collect();
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut mean = vec![0.0; candidates[0].1.len()];
    for (w, (_, v)) in weights.iter().zip(candidates) {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += w / total * x;
        }
    }
    mean
}

/// The definitions of THEORY §12 as loops over pixels, one image `x`.
fn slow(
    kind: PatchKind,
    train: &[Vec<f64>],
    s: ImageShape,
    k: usize,
    x: &[f64],
    sigma: f64,
) -> Vec<f64> {
    let (h, w, r) = (s.height as isize, s.width as isize, (k / 2) as isize);
    let positions: Vec<(isize, isize)> = (0..h).flat_map(|y| (0..w).map(move |x| (y, x))).collect();
    let mut out = vec![0.0; s.dim()];
    if kind == PatchKind::WindowMean {
        let (kh, kw) = (k.min(s.height), k.min(s.width));
        let mut held = vec![0.0; s.pixels()];
        for &(y, x0) in positions
            .iter()
            .filter(|(y, x)| y + kh as isize <= h && x + kw as isize <= w)
        {
            let at = |img: &[f64]| window(img, s, (y, x0), (kh, kw), false);
            let candidates: Vec<_> = train.iter().map(|t| (at(t), at(t))).collect();
            let mean = softmax_mean(&at(x), &candidates, sigma);
            for c in 0..s.channels {
                for dy in 0..kh {
                    for dx in 0..kw {
                        let p = (y as usize + dy) * s.width + x0 as usize + dx;
                        out[c * s.pixels() + p] += mean[(c * kh + dy) * kw + dx];
                        held[p] += (c == 0) as u8 as f64;
                    }
                }
            }
        }
        return (0..s.dim())
            .map(|i| out[i] / held[i % s.pixels()])
            .collect();
    }
    let circular = kind == PatchKind::Equivariant;
    // A pixel within r of an edge matches only the same distance from that edge.
    let same_side = |p: isize, q: isize, len: isize| match p < r || len - 1 - p < r {
        true => p == q,
        false => q >= r && len - 1 - q >= r,
    };
    for &(py, px) in &positions {
        let at =
            |img: &[f64], (y, x): (isize, isize)| window(img, s, (y - r, x - r), (k, k), circular);
        let sources: Vec<(isize, isize)> = match kind {
            PatchKind::Local => vec![(py, px)],
            PatchKind::Equivariant => positions.clone(),
            _ => positions
                .iter()
                .copied()
                .filter(|&(y, x)| same_side(py, y, h) && same_side(px, x, w))
                .collect(),
        };
        let mut candidates = Vec::new();
        for t in train {
            for &q in &sources {
                let centre = (0..s.channels)
                    .map(|c| pixel(t, s, c, q.0, q.1, false))
                    .collect();
                candidates.push((at(t, q), centre));
            }
        }
        let mean = softmax_mean(&at(x, (py, px)), &candidates, sigma);
        for c in 0..s.channels {
            out[c * s.pixels() + (py * w + px) as usize] = mean[c];
        }
    }
    out
}

#[test]
fn every_kind_equals_its_definition_as_a_loop() {
    let s = shape(2, 5, 6);
    let (train, train_rows) = images(1, 0, 4, s);
    let (_, x) = images(1, 1, 3, s);
    let train_rows = rows(&train_rows);
    for kind in KINDS {
        for k in [1, 3, 5] {
            let d = patch(kind, &train, k);
            for sigma in [0.7, 2.0, 9.0] {
                let fast = d.denoise(&x, sigma).unwrap();
                let expected: Vec<Vec<f64>> = rows(&x)
                    .iter()
                    .map(|xi| slow(kind, &train_rows, s, k, xi, sigma))
                    .collect();
                let expected = Tensor::new(expected, x.device()).unwrap();
                let gap = max_abs_diff(&fast, &expected);
                assert!(gap < 1e-10, "{kind:?} k = {k} sigma = {sigma}: {gap}");
                // f32 agrees to its rounding.
                let d32 = patch(kind, &train.to_dtype(DType::F32).unwrap(), k);
                let gap32 = max_abs_diff(
                    &d32.denoise(&x.to_dtype(DType::F32).unwrap(), sigma)
                        .unwrap(),
                    &expected,
                );
                assert!(gap32 < 1e-4, "{kind:?} k = {k} f32: {gap32}");
            }
        }
    }
}

/// Digit-like images, a blank background (-1) and a few strokes of two
/// values, hold many equal patches, which the denoisers merge into one key
/// with a count: still the loop over every patch (to f64 rounding, the same
/// sums in another order), and fewer keys.
#[test]
fn equal_patches_merged_still_equal_the_definition() {
    let s = shape(1, 6, 7);
    let stroke = |seed, index, count| {
        let u = gaussian(seed, index, count, s.dim());
        let v = u.ge(0.8).unwrap().to_dtype(DType::F64).unwrap();
        ((v * 1.5).unwrap() - 1.0).unwrap() // -1 mostly, 0.5 at ~21% of pixels
    };
    let train_rows = stroke(9, 0, 5);
    let train = train_rows.reshape((5, 1, 6, 7)).unwrap();
    let x = gaussian(9, 1, 2, s.dim());
    let train_rows = rows(&train_rows);
    for kind in KINDS {
        for k in [1, 3, 5] {
            let d = patch(kind, &train, k);
            let (distinct, all) = d.distinct_patches(k).unwrap();
            // Large windows of few images may all differ; small ones repeat.
            assert!(
                distinct < all || k == 5,
                "{kind:?} k = {k}: {distinct} of {all}"
            );
            for sigma in [0.3, 1.0, 6.0] {
                let expected: Vec<Vec<f64>> = rows(&x)
                    .iter()
                    .map(|xi| slow(kind, &train_rows, s, k, xi, sigma))
                    .collect();
                let gap = max_abs_diff(
                    &d.denoise(&x, sigma).unwrap(),
                    &Tensor::new(expected, x.device()).unwrap(),
                );
                assert!(gap < 1e-10, "{kind:?} k = {k} sigma = {sigma}: {gap}");
            }
        }
    }
}

/// A window covering the whole image from every pixel makes LS, boundary
/// ELS and the window mean the empirical denoiser; circular ELS becomes the
/// empirical denoiser of every circular shift of every training image.
#[test]
fn whole_image_windows_reduce_to_the_empirical_denoiser() {
    let s = shape(1, 5, 5);
    let (train, train_rows) = images(2, 0, 6, s);
    let (_, x) = images(2, 1, 4, s);
    let empirical = EmpiricalDenoiser::new(&train_rows).unwrap();
    let shifted: Vec<Tensor> = (0..5)
        .flat_map(|dy| (0..5).map(move |dx| (dy, dx)))
        .map(|(dy, dx)| roll(&train, dy, dx).flatten_from(1).unwrap())
        .collect();
    let augmented = EmpiricalDenoiser::new(&Tensor::cat(&shifted, 0).unwrap()).unwrap();
    for sigma in [0.5, 2.0, 10.0] {
        let want = empirical.denoise(&x, sigma).unwrap();
        for (kind, k) in [
            (PatchKind::Local, 9),
            (PatchKind::EquivariantBoundary, 9),
            (PatchKind::WindowMean, 5),
        ] {
            let gap = max_abs_diff(&patch(kind, &train, k).denoise(&x, sigma).unwrap(), &want);
            assert!(gap < 1e-12, "{kind:?} sigma {sigma}: {gap}");
        }
        let els = patch(PatchKind::Equivariant, &train, 5)
            .denoise(&x, sigma)
            .unwrap();
        let gap = max_abs_diff(&els, &augmented.denoise(&x, sigma).unwrap());
        assert!(gap < 1e-12, "ELS sigma {sigma}: {gap}");
    }
}

/// k = 1: LS (and the window mean) is each pixel's empirical denoiser over
/// the training values at that pixel; ELS over every training pixel.
#[test]
fn single_pixel_patches_are_per_pixel_empirical_denoisers() {
    let s = shape(3, 4, 3);
    let (train, _) = images(3, 0, 5, s);
    let (_, x) = images(3, 1, 2, s);
    let pixels_of = |images: &Tensor| images.flatten_from(2).unwrap().transpose(1, 2).unwrap(); // [N, HW, C]
    let (train_pixels, x_pixels) = (
        pixels_of(&train),
        pixels_of(&x.reshape((2, 3, 4, 3)).unwrap()),
    );
    let every_pixel = EmpiricalDenoiser::new(&train_pixels.reshape((5 * 12, 3)).unwrap()).unwrap();
    let sigma = 0.8;
    for (kind, expect_local) in [
        (PatchKind::Local, true),
        (PatchKind::WindowMean, true),
        (PatchKind::Equivariant, false),
    ] {
        let d = patch(kind, &train, 1).denoise(&x, sigma).unwrap();
        let d_pixels = pixels_of(&d.reshape((2, 3, 4, 3)).unwrap());
        for p in 0..12 {
            let query = x_pixels.narrow(1, p, 1).unwrap().squeeze(1).unwrap();
            let want = match expect_local {
                true => EmpiricalDenoiser::new(
                    &train_pixels.narrow(1, p, 1).unwrap().squeeze(1).unwrap(),
                )
                .unwrap(),
                false => EmpiricalDenoiser::new(&every_pixel.train().unwrap()).unwrap(),
            };
            let got = d_pixels.narrow(1, p, 1).unwrap().squeeze(1).unwrap();
            let gap = max_abs_diff(&got, &want.denoise(&query, sigma).unwrap());
            assert!(gap < 1e-12, "{kind:?} pixel {p}: {gap}");
        }
    }
}

/// Circular shift of images [B, C, H, W] by (dy, dx).
fn roll(images: &Tensor, dy: usize, dx: usize) -> Tensor {
    let (h, w) = (images.dim(2).unwrap(), images.dim(3).unwrap());
    let by = |t: &Tensor, axis: usize, len: usize, d: usize| {
        let (head, tail) = (
            t.narrow(axis, len - d, d).unwrap(),
            t.narrow(axis, 0, len - d).unwrap(),
        );
        Tensor::cat(&[head, tail], axis).unwrap()
    };
    by(&by(images, 2, h, dy % h), 3, w, dx % w)
}

#[test]
fn els_commutes_with_circular_shifts_and_ls_does_not() {
    let s = shape(2, 5, 6);
    let (train, _) = images(4, 0, 5, s);
    let (x, _) = images(4, 1, 2, s);
    let as_rows = |t: &Tensor| t.flatten_from(1).unwrap();
    let as_images = |t: &Tensor| t.reshape((2, 2, 5, 6)).unwrap();
    for k in [1, 3, 5] {
        for sigma in [0.6, 3.0] {
            for (kind, equivariant) in [(PatchKind::Equivariant, true), (PatchKind::Local, false)] {
                let d = patch(kind, &train, k);
                let shifted_after =
                    roll(&as_images(&d.denoise(&as_rows(&x), sigma).unwrap()), 2, 3);
                let shifted_before =
                    as_images(&d.denoise(&as_rows(&roll(&x, 2, 3)), sigma).unwrap());
                let gap = max_abs_diff(&shifted_after, &shifted_before);
                match equivariant {
                    true => assert!(gap < 1e-12, "ELS k = {k}: {gap}"),
                    false => assert!(gap > 1e-3, "LS k = {k} should see where a patch is: {gap}"),
                }
            }
        }
    }
}

/// The training rows as the mixture (1/N) sum_i N(y_i, s^2 I), built from
/// the crate's general `Mixture`: the KDE's definition, independently.
fn isotropic_mixture(train: &Tensor, s: f64) -> Mixture {
    let points = rows(train);
    let weight = 1.0 / points.len() as f64;
    let components = points
        .into_iter()
        .map(|mean| Component {
            weight,
            basis: Mat::zeros(mean.len(), 0),
            mean,
            variances: vec![],
            floor: s * s,
        })
        .collect();
    Mixture::new(components).unwrap()
}

/// D = sum_i w_i [y_i + s^2/(s^2 + sigma^2)(x - y_i)] is the isotropic
/// mixture's posterior mean; s = 0 is the empirical denoiser.
#[test]
fn kde_is_the_isotropic_mixture_and_the_empirical_denoiser_at_zero_bandwidth() {
    let (train, x) = (gaussian(5, 0, 7, 4), gaussian(5, 1, 3, 4));
    let empirical = EmpiricalDenoiser::new(&train).unwrap();
    let mixture = isotropic_mixture(&train, 0.3);
    let (kde, sharp) = (
        KdeDenoiser::new(&train, 0.3).unwrap(),
        KdeDenoiser::new(&train, 0.0).unwrap(),
    );
    for sigma in [0.05, 0.5, 4.0] {
        let gap = max_abs_diff(
            &kde.denoise(&x, sigma).unwrap(),
            &mixture.denoise(&x, sigma).unwrap(),
        );
        assert!(gap < 1e-10, "kde vs mixture at {sigma}: {gap}");
        let gap = max_abs_diff(
            &sharp.denoise(&x, sigma).unwrap(),
            &empirical.denoise(&x, sigma).unwrap(),
        );
        assert!(gap == 0.0, "kde s = 0 at {sigma}: {gap}");
        let gap = max_abs_diff(
            &kde.jacobian(&x, sigma).unwrap(),
            &mixture.jacobian(&x, sigma).unwrap(),
        );
        assert!(gap < 1e-6, "kde Jacobian at {sigma}: {gap}");
    }
    assert!(KdeDenoiser::new(&train, -1.0).is_err());
}

/// The fitted bandwidth is the grid's best held-out mean log density, the
/// density computed here as the isotropic mixture's own.
#[test]
fn kde_bandwidth_maximizes_the_held_out_mixture_density() {
    let (train, held_out) = (gaussian(9, 0, 20, 3), gaussian(9, 1, 30, 3));
    let grid = [0.05, 0.3, 0.8, 1.5, 4.0];
    let mean_density = |s: f64| {
        // The mixture's noisy density at a vanishing sigma is its own.
        let density = isotropic_mixture(&train, s)
            .log_density(&held_out, 1e-9)
            .unwrap();
        density.mean_all().unwrap().to_scalar::<f64>().unwrap()
    };
    let best = grid
        .iter()
        .copied()
        .max_by(|a, b| mean_density(*a).total_cmp(&mean_density(*b)))
        .unwrap();
    assert_eq!(
        KdeDenoiser::fit_bandwidth(&train, &held_out, &grid).unwrap(),
        best
    );
    assert!(
        best > 0.05 && best < 4.0,
        "an interior optimum makes the test sharp: {best}"
    );
    assert!(KdeDenoiser::fit_bandwidth(&train, &held_out, &[]).is_err());
}

/// Autodiff flows through the patch cuts: the vector-Jacobian product
/// matches finite differences of D.
#[test]
fn patch_vjp_matches_finite_differences() {
    let s = shape(1, 4, 4);
    let (train, _) = images(6, 0, 3, s);
    let (_, x) = images(6, 1, 2, s);
    let v = gaussian(6, 2, 2, 16);
    for kind in KINDS {
        let d = patch(kind, &train, 3);
        let vjp = d.vjp(&x, 1.5, &v).unwrap();
        let j = d.jacobian(&x, 1.5).unwrap(); // finite differences, [B, n, n]
        let jt_v = j
            .transpose(1, 2)
            .unwrap()
            .matmul(&v.unsqueeze(2).unwrap())
            .unwrap()
            .squeeze(2)
            .unwrap();
        let gap = max_abs_diff(&vjp, &jt_v) / max_abs(&jt_v);
        assert!(gap < 1e-6, "{kind:?}: {gap}");
    }
}

#[test]
fn a_schedule_picks_the_nearest_sigma_and_the_denoiser_follows_it() {
    let dir = common::temp_dir("patch-schedule");
    let file = dir.join("schedule.csv");
    std::fs::write(&file, "sigma,k,cosine\n0.1,1,0.9\n1.0,3,0.8\n10.0,5,0.7\n").unwrap();
    let size = PatchSize::parse(file.to_str().unwrap()).unwrap();
    for (sigma, k) in [
        (0.01, 1),
        (0.3, 1),
        (0.32, 3),
        (2.0, 3),
        (3.2, 5),
        (80.0, 5),
    ] {
        assert_eq!(size.at(sigma).unwrap(), k, "sigma {sigma}");
    }
    let s = shape(1, 5, 5);
    let (train, _) = images(7, 0, 4, s);
    let (_, x) = images(7, 1, 2, s);
    let scheduled = PatchDenoiser::new(PatchKind::Equivariant, &train, size).unwrap();
    for (sigma, k) in [(0.2, 1), (1.5, 3), (9.0, 5)] {
        let want = patch(PatchKind::Equivariant, &train, k)
            .denoise(&x, sigma)
            .unwrap();
        assert_eq!(
            max_abs_diff(&scheduled.denoise(&x, sigma).unwrap(), &want),
            0.0
        );
    }
    assert!(PatchSize::parse("4").is_err() && PatchSize::parse("0").is_err());
    let function =
        PatchSize::Function(std::sync::Arc::new(|sigma| if sigma > 1.0 { 4 } else { 3 }));
    assert_eq!(function.at(0.5).unwrap(), 3);
    assert!(function.at(2.0).unwrap_err().to_string().contains("odd"));
    std::fs::write(&file, "sigma,k\n1.0,two\n").unwrap();
    let message = PatchSize::parse(file.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("schedule.csv") && message.contains("row 1"),
        "{message}"
    );
}

#[test]
fn specs_build_the_patch_denoisers_and_name_bad_inputs() {
    let dir = common::temp_dir("patch-specs");
    let s = shape(1, 4, 4);
    let (train, rows_) = images(8, 0, 5, s);
    let (images_file, rows_file) = (dir.join("images.npy"), dir.join("rows.npy"));
    diffusion_regimes::data::npy::write_npy(&images_file, &train, DType::F64).unwrap();
    diffusion_regimes::data::npy::write_npy(&rows_file, &rows_, DType::F64).unwrap();
    let (_, x) = images(8, 1, 2, s);
    let cpu = candle_core::Device::Cpu;
    for (name, kind) in [
        ("local", PatchKind::Local),
        ("els", PatchKind::Equivariant),
        ("els-boundary", PatchKind::EquivariantBoundary),
        ("window-mean", PatchKind::WindowMean),
    ] {
        let spec: DenoiserSpec = format!("{name}:{}:3", images_file.display())
            .parse()
            .unwrap();
        let built = spec.build(DType::F64, &cpu).unwrap();
        let want = patch(kind, &train, 3).denoise(&x, 1.0).unwrap();
        assert_eq!(
            max_abs_diff(&built.denoise(&x, 1.0).unwrap(), &want),
            0.0,
            "{name}"
        );
        let flat: DenoiserSpec = format!("{name}:{}:3", rows_file.display()).parse().unwrap();
        let message = flat.build(DType::F64, &cpu).err().unwrap().to_string();
        assert!(
            message.contains("rows.npy") && message.contains("[N, C, H, W]"),
            "{message}"
        );
        let even: DenoiserSpec = format!("{name}:{}:4", images_file.display())
            .parse()
            .unwrap();
        assert!(even
            .build(DType::F64, &cpu)
            .err()
            .unwrap()
            .to_string()
            .contains("odd"));
    }
    let kde: DenoiserSpec = format!("kde:{}:0.5", rows_file.display()).parse().unwrap();
    let want = KdeDenoiser::new(&rows_, 0.5)
        .unwrap()
        .denoise(&x, 1.0)
        .unwrap();
    assert_eq!(
        max_abs_diff(
            &kde.build(DType::F64, &cpu)
                .unwrap()
                .denoise(&x, 1.0)
                .unwrap(),
            &want
        ),
        0.0
    );
    let bad: DenoiserSpec = format!("kde:{}:wide", rows_file.display()).parse().unwrap();
    assert!(bad
        .build(DType::F64, &cpu)
        .err()
        .unwrap()
        .to_string()
        .contains("wide"));
}

//! Networks, preconditioning, the optimizer and nested subsets, each against
//! an independent computation.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use common::{gaussian, max_abs, max_abs_diff};
use diffusion_regimes::data::{nested_subset, sigma_data};
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::framework::Framework;
use diffusion_regimes::nn::optim::{clip_scale, AdamW, AdamWConfig, Kernel};
use diffusion_regimes::nn::{
    denoising_loss, Arch, CnnConfig, MlpConfig, Network, Padding, Params, Precond, UnetConfig,
};
use proptest::prelude::*;

fn f32_gaussian(seed: u64, rows: usize, cols: usize) -> Tensor {
    gaussian(seed, 0, rows, cols).to_dtype(DType::F32).unwrap()
}

/// Forward and backward through a U-Net on images of `shape`; every parameter gets a gradient.
fn unet_forward_backward(shape: [usize; 3], config: UnetConfig) {
    let params = Params::new(1);
    let arch = Arch::Unet(config);
    let net = arch
        .build(&shape, None, params.var_builder(DType::F32, &Device::Cpu))
        .unwrap();
    let b = 2;
    let n: usize = shape.iter().product();
    let x = f32_gaussian(2, b, n)
        .reshape((b, shape[0], shape[1], shape[2]))
        .unwrap();
    let c_noise = Tensor::new(&[-0.5f32, 0.7], &Device::Cpu).unwrap();
    let out = net.forward(&x, &c_noise, None).unwrap();
    assert_eq!(out.dims(), x.dims());
    let model = Precond::new(
        net,
        Framework::EDM.parameterisation(0.5, -1.2, 1.2),
        shape.to_vec(),
        &Device::Cpu,
    );
    let sigma = Tensor::new(&[0.3f32, 2.0], &Device::Cpu).unwrap();
    let l = denoising_loss(&model, &x, &sigma, &x, None).unwrap();
    let grads = l.backward().unwrap();
    for (name, var) in params.named() {
        let g = grads
            .get(&var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        assert_eq!(g.dims(), var.dims(), "{name}");
    }
}

#[test]
fn unet_forward_and_backward_on_one_channel_8x8() {
    unet_forward_backward([1, 8, 8], UnetConfig::with_base(8));
}

#[test]
fn unet_forward_and_backward_on_three_channel_32x32() {
    let config = UnetConfig {
        base: 16,
        multipliers: vec![1, 2, 2, 2],
        blocks: 1,
        attention: true,
    };
    unet_forward_backward([3, 32, 32], config);
}

#[test]
fn unet_rejects_sizes_that_do_not_halve() {
    let params = Params::new(1);
    let e = Arch::Unet(UnetConfig::with_base(8))
        .build(
            &[1, 6, 6],
            None,
            params.var_builder(DType::F32, &Device::Cpu),
        )
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("6x6"), "{e}");
}

#[test]
fn initial_weights_depend_only_on_seed_and_name() {
    let arch = Arch::Mlp(MlpConfig {
        width: 16,
        depth: 2,
    });
    let build = |seed| {
        let p = Params::new(seed);
        arch.build(&[5], None, p.var_builder(DType::F32, &Device::Cpu))
            .unwrap();
        p.named()
    };
    let (a, b, c) = (build(3), build(3), build(4));
    for (((na, va), (nb, vb)), (_, vc)) in a.iter().zip(&b).zip(&c) {
        assert_eq!(na, nb);
        assert_eq!(max_abs_diff(va, vb), 0.0, "{na}");
        if max_abs(va) > 0.0 {
            assert!(max_abs_diff(va, vc) > 0.0, "{na} ignores the seed");
        }
    }
}

#[test]
fn kaiming_initialisation_has_the_requested_scale() {
    let p = Params::new(0);
    let w = p
        .var_builder(DType::F32, &Device::Cpu)
        .get_with_hints((256, 400), "w", candle_nn::init::DEFAULT_KAIMING_NORMAL)
        .unwrap();
    // gain sqrt(2) for ReLU, fan-in 400: std = sqrt(2 / 400); 102,400 draws give ~0.3% error.
    let std = w
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .sqrt() as f64;
    assert!(
        (std / (2.0f64 / 400.0).sqrt() - 1.0).abs() < 0.01,
        "std {std}"
    );
}

#[test]
fn preconditioning_and_loss_match_a_hand_computation() {
    // With a zero output layer F = 0, so D = c_skip x exactly (THEORY §3).
    let p = Params::new(0);
    let arch = Arch::Mlp(MlpConfig { width: 8, depth: 1 });
    let net = arch
        .build(&[3], None, p.var_builder(DType::F32, &Device::Cpu))
        .unwrap();
    let sd = 0.7;
    let model = Precond::new(
        net,
        Framework::EDM.parameterisation(sd, -1.2, 1.2),
        vec![3],
        &Device::Cpu,
    );
    let y = f32_gaussian(1, 4, 3);
    let z = f32_gaussian(2, 4, 3);
    let sigmas = [0.01f32, 0.3, 1.0, 20.0];
    let sigma = Tensor::new(&sigmas, &Device::Cpu).unwrap();
    let loss = denoising_loss(&model, &y, &sigma, &z, None)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    let (yv, zv) = (y.to_vec2::<f32>().unwrap(), z.to_vec2::<f32>().unwrap());
    let mut expected = 0.0;
    for (b, &s) in sigmas.iter().enumerate() {
        let s = s as f64;
        let c_skip = sd * sd / (s * s + sd * sd);
        let lambda = (s * s + sd * sd) / (s * sd).powi(2);
        let err: f64 = (0..3)
            .map(|i| {
                let x = yv[b][i] as f64 + s * zv[b][i] as f64;
                (c_skip * x - yv[b][i] as f64).powi(2)
            })
            .sum::<f64>()
            / 3.0;
        expected += lambda * err / 4.0;
    }
    assert!((loss / expected - 1.0).abs() < 1e-5, "{loss} vs {expected}");
    let x = f32_gaussian(3, 2, 3);
    let d = model.denoise(&x, 0.4).unwrap();
    let c_skip = sd * sd / (0.16 + sd * sd);
    assert!(max_abs_diff(&d, &(x * c_skip).unwrap()) < 1e-6);
}

/// Random parameters and four rounds of random gradients.
fn optimizer_problem() -> (Vec<Tensor>, Vec<Vec<Tensor>>) {
    let shapes = [(7, 5), (1, 13), (32, 32)];
    let init = shapes
        .iter()
        .enumerate()
        .map(|(i, &(r, c))| f32_gaussian(10 + i as u64, r, c))
        .collect();
    let grads = (0..4)
        .map(|t| {
            shapes
                .iter()
                .enumerate()
                .map(|(i, &(r, c))| f32_gaussian(100 * t + i as u64, r, c))
                .collect()
        })
        .collect();
    (init, grads)
}

#[test]
fn fused_adamw_matches_tensor_ops_and_candle_nn() {
    let (init, grads) = optimizer_problem();
    let vars = |init: &[Tensor]| -> Vec<Var> {
        init.iter().map(|t| Var::from_tensor(t).unwrap()).collect()
    };
    let config = AdamWConfig {
        weight_decay: 0.1,
        ..AdamWConfig::default()
    };
    let (fused, plain, reference) = (vars(&init), vars(&init), vars(&init));
    let mut a = AdamW::new(fused.clone(), config.clone()).unwrap();
    assert_eq!(a.kernel(), Kernel::FusedCpu);
    let mut b = AdamW::new(plain.clone(), config.clone())
        .unwrap()
        .with_kernel(Kernel::TensorOps);
    let params = candle_nn::ParamsAdamW {
        lr: 0.01,
        beta1: config.beta1,
        beta2: config.beta2,
        eps: config.eps,
        weight_decay: config.weight_decay,
    };
    let mut c = candle_nn::AdamW::new(reference.clone(), params).unwrap();
    for g in &grads {
        a.step(g, 0.01, 1.0).unwrap();
        b.step(g, 0.01, 1.0).unwrap();
        // sum_i <v_i, g_i> has gradient exactly g_i with respect to v_i.
        let terms: Vec<Tensor> = reference
            .iter()
            .zip(g)
            .map(|(v, gi)| (v.as_tensor() * gi).unwrap().sum_all().unwrap())
            .collect();
        c.backward_step(&Tensor::stack(&terms, 0).unwrap().sum_all().unwrap())
            .unwrap();
    }
    for ((x, y), z) in fused.iter().zip(&plain).zip(&reference) {
        // f32 arithmetic in different orders: agreement to a few ulps of the 0.04 total movement.
        assert!(max_abs_diff(x, y) < 1e-6, "fused vs tensor ops");
        assert!(max_abs_diff(x, z) < 1e-6, "fused vs candle-nn");
        assert!(max_abs_diff(x, &x.zeros_like().unwrap()) > 0.0);
    }
}

#[test]
fn clipping_scales_the_global_norm_to_the_limit() {
    let (_, grads) = optimizer_problem();
    let g = &grads[0];
    let norm: f64 = g.iter().map(common::sum_sq).sum::<f64>().sqrt();
    let (measured, scale) = clip_scale(g, 1.0).unwrap();
    assert!((measured / norm - 1.0).abs() < 1e-6);
    assert!((scale * norm - 1.0).abs() < 1e-6);
    assert_eq!(clip_scale(g, 10.0 * norm).unwrap().1, 1.0);
}

#[test]
fn sigma_data_is_the_pooled_per_coordinate_standard_deviation() {
    // Columns with standard deviations 1 and 3 around different means: sqrt((1 + 9) / 2).
    let a = gaussian(1, 0, 20_000, 1);
    let b = ((gaussian(2, 0, 20_000, 1) * 3.0).unwrap() + 5.0).unwrap();
    let sd = sigma_data(&Tensor::cat(&[a, b], 1).unwrap()).unwrap();
    assert!((sd / 5f64.sqrt() - 1.0).abs() < 0.02, "{sd}");
}

proptest! {
    #[test]
    fn nested_subsets_are_prefixes_of_one_permutation(total in 1usize..300, a in 1usize..300, b in 1usize..300, seed in 0u64..4) {
        let (small, large) = (a.min(b).min(total), a.max(b).min(total));
        let s = nested_subset(total, small, seed).unwrap();
        let l = nested_subset(total, large, seed).unwrap();
        prop_assert_eq!(&l[..small], &s[..]);
        let mut sorted = l.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), large);
        prop_assert!(l.iter().all(|&i| i < total));
        prop_assert!(nested_subset(total, total + 1, seed).is_err());
    }
}

/// A local CNN of `depth` blocks and width 8 on one-channel images of side
/// `side`, its zero-initialised output layer replaced by random weights so
/// that every path reaches the output.
fn random_cnn(depth: usize, padding: Padding, side: usize) -> Box<dyn Network> {
    let params = Params::new(5);
    let arch = Arch::Cnn(CnnConfig {
        width: 8,
        depth,
        padding,
    });
    let net = arch
        .build(
            &[1, side, side],
            None,
            params.var_builder(DType::F32, &Device::Cpu),
        )
        .unwrap();
    for (name, var) in params.named() {
        if name.starts_with("output") {
            let n = var.elem_count();
            let values = f32_gaussian(6, 1, n).reshape(var.dims()).unwrap();
            var.set(&values).unwrap();
        }
    }
    net
}

/// The input pixels output pixel (row, col) of `net` depends on, by autodiff
/// at a random image: the set of (i, j) whose gradient is not exactly zero.
fn support(net: &dyn Network, side: usize, row: usize, col: usize) -> Vec<(usize, usize)> {
    let x = Var::from_tensor(
        &f32_gaussian(7, 1, side * side)
            .reshape((1, 1, side, side))
            .unwrap(),
    )
    .unwrap();
    let c_noise = Tensor::new(&[0.3f32], &Device::Cpu).unwrap();
    let y = net.forward(x.as_tensor(), &c_noise, None).unwrap();
    let pixel = y
        .narrow(2, row, 1)
        .unwrap()
        .narrow(3, col, 1)
        .unwrap()
        .sum_all()
        .unwrap();
    let grad = pixel
        .backward()
        .unwrap()
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap();
    let grad = grad.to_vec1::<f32>().unwrap();
    (0..side * side)
        .filter(|&k| grad[k] != 0.0)
        .map(|k| (k / side, k % side))
        .collect()
}

/// The square of side 2 r + 1 around (row, col), clipped to the image or
/// wrapped around it.
fn square(side: usize, row: usize, col: usize, r: usize, wrap: bool) -> Vec<(usize, usize)> {
    let axis = |c: usize| -> Vec<usize> {
        let (c, r, s) = (c as i64, r as i64, side as i64);
        let range = (c - r)..=(c + r);
        match wrap {
            true => range.map(|k| k.rem_euclid(s) as usize).collect(),
            false => range
                .filter(|k| (0..s).contains(k))
                .map(|k| k as usize)
                .collect(),
        }
    };
    let mut cells: Vec<_> = (axis(row).into_iter())
        .flat_map(|i| axis(col).into_iter().map(move |j| (i, j)))
        .collect();
    cells.sort();
    cells
}

/// The CNN's receptive field is what `receptive_field` says: an output
/// pixel's gradient is non-zero on exactly that square of inputs (clipped at
/// the edges with zero padding, wrapped with circular padding), a U-Net's
/// reaches everything (its group norms see every pixel).
#[test]
fn a_local_cnn_sees_exactly_its_receptive_field() {
    let side = 21;
    for depth in [1, 2] {
        let field = CnnConfig {
            width: 8,
            depth,
            padding: Padding::Zero,
        }
        .receptive_field();
        assert_eq!(field, 4 * depth + 5);
        let r = field / 2;
        let zero = random_cnn(depth, Padding::Zero, side);
        let circular = random_cnn(depth, Padding::Circular, side);
        for (row, col) in [(10, 10), (0, 3), (20, 19)] {
            let sq = |wrap| square(side, row, col, r, wrap);
            assert_eq!(
                support(&*zero, side, row, col),
                sq(false),
                "zero, depth {depth}, ({row}, {col})"
            );
            assert_eq!(
                support(&*circular, side, row, col),
                sq(true),
                "circular, depth {depth}, ({row}, {col})"
            );
        }
    }
    let params = Params::new(5);
    let unet = Arch::Unet(UnetConfig {
        base: 8,
        multipliers: vec![1],
        blocks: 1,
        attention: false,
    })
    .build(
        &[1, 8, 8],
        None,
        params.var_builder(DType::F32, &Device::Cpu),
    )
    .unwrap();
    for (name, var) in params.named() {
        if name.starts_with("output") {
            let values = f32_gaussian(6, 1, var.elem_count())
                .reshape(var.dims())
                .unwrap();
            var.set(&values).unwrap();
        }
    }
    assert_eq!(support(&*unet, 8, 0, 0).len(), 64);
}

/// `x` rolled by (dr, dc) pixels along its last two axes, as numpy.roll.
fn roll(x: &Tensor, dr: usize, dc: usize) -> Tensor {
    let rolled = |dim: usize, by: usize| {
        let n = x.dim(dim).unwrap();
        let from: Vec<u32> = (0..n).map(|k| ((k + n - by) % n) as u32).collect();
        Tensor::new(from, &Device::Cpu).unwrap()
    };
    (x.contiguous().unwrap())
        .index_select(&rolled(2, dr), 2)
        .unwrap()
        .index_select(&rolled(3, dc), 3)
        .unwrap()
}

/// With circular padding the CNN commutes with circular shifts of the image
/// (to f32 rounding: the same sums in another order); with zero padding the
/// edges break it.
#[test]
fn a_circular_cnn_commutes_with_circular_shifts() {
    let side = 12;
    let x = f32_gaussian(8, 2, side * side)
        .reshape((2, 1, side, side))
        .unwrap();
    let c_noise = Tensor::new(&[0.3f32, -1.0], &Device::Cpu).unwrap();
    let shift_error = |padding| {
        let net = random_cnn(2, padding, side);
        let f = |x: &Tensor| net.forward(x, &c_noise, None).unwrap();
        let (a, b) = (f(&roll(&x, 3, 5)), roll(&f(&x), 3, 5));
        max_abs_diff(&a, &b) / max_abs(&b)
    };
    let circular = shift_error(Padding::Circular);
    assert!(circular < 1e-5, "circular: relative error {circular}");
    let zero = shift_error(Padding::Zero);
    assert!(zero > 1e-2, "zero padding commutes with shifts? {zero}");
}

/// A class-conditional CNN: each class moves the output, and the label
/// "no class" (the class count) computes what the network computes without labels.
#[test]
fn a_class_conditional_cnn_answers_per_class() {
    let params = Params::new(5);
    let arch = Arch::Cnn(CnnConfig {
        width: 8,
        depth: 1,
        padding: Padding::Zero,
    });
    let net = arch
        .build(
            &[1, 6, 6],
            Some(3),
            params.var_builder(DType::F32, &Device::Cpu),
        )
        .unwrap();
    for (name, var) in params.named() {
        if name.starts_with("output") {
            let values = f32_gaussian(6, 1, var.elem_count())
                .reshape(var.dims())
                .unwrap();
            var.set(&values).unwrap();
        }
    }
    let x = f32_gaussian(9, 2, 36).reshape((2, 1, 6, 6)).unwrap();
    let c_noise = Tensor::new(&[0.1f32, 0.1], &Device::Cpu).unwrap();
    let with = |a: u32, b: u32| {
        let labels = Tensor::new(&[a, b], &Device::Cpu).unwrap();
        net.forward(&x, &c_noise, Some(&labels)).unwrap()
    };
    let plain = net.forward(&x, &c_noise, None).unwrap();
    assert_eq!(max_abs_diff(&with(3, 3), &plain), 0.0);
    assert!(max_abs_diff(&with(0, 0), &with(1, 1)) > 1e-3);
}

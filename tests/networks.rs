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
use diffusion_regimes::nn::{denoising_loss, Arch, MlpConfig, Params, Precond, UnetConfig};
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

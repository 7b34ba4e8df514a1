//! The CPU kernels of nn::ops against candle's own ops: forward values and
//! both gradients on random shapes, and a whole U-Net's gradient against the
//! same network computed by candle's ops in f64.

mod common;

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use common::gaussian;
use diffusion_regimes::framework::Framework;
use diffusion_regimes::nn::ops::{avg_pool2x, conv2d_same, dense, silu, upsample2x, GroupNorm};
use diffusion_regimes::nn::{denoising_loss, Arch, Params, Precond, UnetConfig};
use proptest::prelude::*;

fn normal(seed: u64, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    gaussian(seed, 0, 1, n)
        .reshape(dims)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

/// max |a - b| / (1 + max |b|).
fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    let scale = 1.0 + common::max_abs(b);
    common::max_abs_diff(a, b) / scale
}

/// y, dL/dx, dL/dw and dL/db for L = sum(y * r), by `conv`.
fn value_and_gradients(
    conv: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    r: &Tensor,
) -> [Tensor; 4] {
    let (xv, wv, bv) = (
        Var::from_tensor(x).unwrap(),
        Var::from_tensor(w).unwrap(),
        Var::from_tensor(b).unwrap(),
    );
    let y = conv(xv.as_tensor(), wv.as_tensor(), bv.as_tensor());
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| grads.get(v).unwrap().clone();
    [y.clone(), grad(&xv), grad(&wv), grad(&bv)]
}

proptest! {
    #![proptest_config(common::proptest_cases(48))]

    // Both sides sum at most Cin k^2 = 45 (forward, weight gradient: B H W <=
    // 147) f32 products of unit normals in different orders; rounding leaves
    // about sqrt(terms) * 6e-8 relative to the terms' scale, so 1e-5 of the
    // output's scale is a bound with a wide margin, and any indexing mistake
    // is an O(1) error.
    #[test]
    fn same_convolution_matches_candle_forward_and_gradients(
        batch in 1usize..4, inputs in 1usize..6, outputs in 1usize..6,
        height in 1usize..8, width in 1usize..8, big_kernel in any::<bool>(), seed in 0u64..1000,
    ) {
        let k = if big_kernel { 3 } else { 1 };
        let x = normal(seed, &[batch, inputs, height, width]);
        let w = normal(seed + 1, &[outputs, inputs, k, k]);
        let b = normal(seed + 2, &[outputs]);
        let r = normal(seed + 3, &[batch, outputs, height, width]);
        let ours = value_and_gradients(|x, w, b| conv2d_same(x, w, Some(b)).unwrap(), &x, &w, &b, &r);
        let candle = value_and_gradients(
            |x, w, b| {
                x.conv2d(w, k / 2, 1, 1, 1).unwrap()
                    .broadcast_add(&b.reshape((1, outputs, 1, 1)).unwrap()).unwrap()
            },
            &x, &w, &b, &r,
        );
        for (what, (a, c)) in ["y", "dx", "dw", "db"].iter().zip(ours.iter().zip(&candle)) {
            prop_assert_eq!(a.dims(), c.dims());
            let e = relative_error(a, c);
            prop_assert!(e < 1e-5, "{} differs by {} (relative)", what, e);
        }
    }
}

/// y, dL/dx, dL/dgamma, dL/dbeta for L = sum(y * r), y = [silu] group norm(x)
/// by ours (the crate's kernel) or by candle-nn's GroupNorm and Tensor::silu.
fn group_norm_and_gradients(
    ours: bool,
    silu: bool,
    groups: usize,
    x: &Tensor,
    r: &Tensor,
) -> [Tensor; 4] {
    let channels = x.dim(1).unwrap();
    let params = Params::new(3);
    let vb = params.var_builder(DType::F32, &Device::Cpu);
    let norm = GroupNorm::new(groups, channels, 1e-6, vb.clone()).unwrap();
    // Move scale and shift off their initial 1 and 0, identically for both.
    let named = params.named();
    let values: BTreeMap<String, Tensor> = named
        .iter()
        .enumerate()
        .map(|(i, (name, var))| (name.clone(), normal(40 + i as u64, var.dims())))
        .collect();
    params.assign(&values, "test").unwrap();
    let (gamma, beta) = (&named[1].1, &named[0].1); // sorted: bias, weight
    let xv = Var::from_tensor(x).unwrap();
    let y = if ours {
        match silu {
            true => norm.forward_silu(xv.as_tensor()).unwrap(),
            false => norm.forward(xv.as_tensor()).unwrap(),
        }
    } else {
        let reference = candle_nn::GroupNorm::new(
            gamma.as_tensor().clone(),
            beta.as_tensor().clone(),
            channels,
            groups,
            1e-6,
        )
        .unwrap();
        let y = candle_nn::Module::forward(&reference, xv.as_tensor()).unwrap();
        if silu {
            y.silu().unwrap()
        } else {
            y
        }
    };
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| grads.get(v).unwrap().clone();
    [y.clone(), grad(&xv), grad(gamma), grad(beta)]
}

proptest! {
    #![proptest_config(common::proptest_cases(48))]

    // Ours accumulates the statistics in f64, candle in f32 over at most
    // 5 x 49 values: differences of a few f32 roundings of O(1) values, far
    // below 1e-4 of the scale; a wrong formula is O(1).
    #[test]
    fn fused_group_norm_matches_candle_forward_and_gradients(
        batch in 1usize..4, per_group in 1usize..5, groups in 1usize..4,
        height in 1usize..7, width in 1usize..7, silu in any::<bool>(), seed in 0u64..1000,
    ) {
        let x = normal(seed, &[batch, per_group * groups, height, width]);
        let x = x.affine(2.0, 0.5).unwrap();
        let r = normal(seed + 1, x.dims());
        let ours = group_norm_and_gradients(true, silu, groups, &x, &r);
        let candle = group_norm_and_gradients(false, silu, groups, &x, &r);
        for (what, (a, c)) in ["y", "dx", "dgamma", "dbeta"].iter().zip(ours.iter().zip(&candle)) {
            prop_assert_eq!(a.dims(), c.dims());
            let e = relative_error(a, c);
            // In a group of one value x^ = 0, in a group of two x^ = +-1
            // whatever x is: dx = 0 exactly, and both ways compute rounding
            // noise of a cancellation (scaled by 1/std of the group), at 1e-3.
            let tolerance = if per_group * height * width <= 2 { 1e-3 } else { 1e-4 };
            prop_assert!(e < tolerance, "{} differs by {} (relative)", what, e);
        }
    }
}

/// f(x) and dL/dx for L = sum(f(x) * r).
fn value_and_gradient(f: impl Fn(&Tensor) -> Tensor, x: &Tensor, r: &Tensor) -> [Tensor; 2] {
    let xv = Var::from_tensor(x).unwrap();
    let y = f(xv.as_tensor());
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    [y, grads.get(&xv).unwrap().clone()]
}

proptest! {
    #![proptest_config(common::proptest_cases(32))]

    // Means and sums of 4 values, or copies: equal to candle's up to the
    // order of adding 4 numbers (2 roundings).
    #[test]
    fn pooling_and_upsampling_match_candle_forward_and_gradients(
        batch in 1usize..3, channels in 1usize..4, half_h in 1usize..5, half_w in 1usize..5, seed in 0u64..1000,
    ) {
        let (h, w) = (2 * half_h, 2 * half_w);
        let x = normal(seed, &[batch, channels, h, w]);
        let small = normal(seed + 1, &[batch, channels, half_h, half_w]);
        let pooled = [
            value_and_gradient(|x| avg_pool2x(x).unwrap(), &x, &small),
            value_and_gradient(|x| x.avg_pool2d(2).unwrap(), &x, &small),
        ];
        let upsampled = [
            value_and_gradient(|x| upsample2x(x).unwrap(), &small, &x),
            value_and_gradient(|x| x.upsample_nearest2d(h, w).unwrap(), &small, &x),
        ];
        for [ours, candle] in [pooled, upsampled] {
            for (a, c) in ours.iter().zip(&candle) {
                prop_assert_eq!(a.dims(), c.dims());
                prop_assert!(relative_error(a, c) < 1e-6);
            }
        }
    }
}

proptest! {
    #![proptest_config(common::proptest_cases(32))]

    // Sums of at most 64 (forward, dx), 40 (dW) or 40 (db) f32 products:
    // rounding far below 1e-5 of the scale, an indexing error O(1).
    #[test]
    fn dense_layer_matches_candle_forward_and_gradients(
        batch in 1usize..40, inputs in 1usize..64, outputs in 1usize..70, seed in 0u64..1000,
    ) {
        let x = normal(seed, &[batch, inputs]);
        let w = normal(seed + 1, &[outputs, inputs]);
        let b = normal(seed + 2, &[outputs]);
        let r = normal(seed + 3, &[batch, outputs]);
        let ours = value_and_gradients(|x, w, b| dense(x, w, Some(b)).unwrap(), &x, &w, &b, &r);
        let candle = value_and_gradients(
            |x, w, b| x.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap(),
            &x, &w, &b, &r,
        );
        for (what, (a, c)) in ["y", "dx", "dw", "db"].iter().zip(ours.iter().zip(&candle)) {
            prop_assert_eq!(a.dims(), c.dims());
            let e = relative_error(a, c);
            prop_assert!(e < 1e-5, "{} differs by {} (relative)", what, e);
        }
    }
}

/// y, dL/dx (None for an input without gradient), dL/dw, dL/db of the dense
/// layer for L = sum(y * r).
fn dense_gradients(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    r: &Tensor,
    tracked: bool,
) -> Vec<Option<Tensor>> {
    let (xv, wv, bv) = (
        Var::from_tensor(x).unwrap(),
        Var::from_tensor(w).unwrap(),
        Var::from_tensor(b).unwrap(),
    );
    let input = if tracked {
        xv.as_tensor().clone()
    } else {
        x.clone()
    };
    let y = dense(&input, wv.as_tensor(), Some(bv.as_tensor())).unwrap();
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |v: &Var| grads.get(v).cloned();
    vec![Some(y), grad(&xv), grad(&wv), grad(&bv)]
}

/// K models' layers stacked on a leading axis give each model the bits of
/// its own layer, forward and all three gradients, at shapes on both sides
/// of the kernels' thresholds (a lone product split by rows once n > 64 and
/// m >= 32; the two backward products side by side from 2^20 multiply-adds),
/// with and without an input that needs its gradient; and the stacked layer
/// off the kernel (f64, candle's ops) agrees with it.
#[test]
fn stacked_dense_layers_give_each_model_the_bits_of_its_own_layer() {
    let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (models, batch, inputs, outputs) in [(3, 5, 7, 9), (2, 64, 128, 128), (4, 40, 96, 80)] {
        for tracked in [true, false] {
            let seed = (batch * inputs) as u64;
            let x = normal(seed, &[models, batch, inputs]);
            let w = normal(seed + 1, &[models, outputs, inputs]);
            let b = normal(seed + 2, &[models, outputs]);
            let r = normal(seed + 3, &[models, batch, outputs]);
            let stacked = dense_gradients(&x, &w, &b, &r, tracked);
            assert_eq!(stacked[1].is_some(), tracked);
            let f64s = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
            let exact = dense_gradients(&f64s(&x), &f64s(&w), &f64s(&b), &f64s(&r), tracked);
            for k in 0..models {
                let slice = |t: &Tensor| t.get(k).unwrap();
                let alone =
                    dense_gradients(&slice(&x), &slice(&w), &slice(&b), &slice(&r), tracked);
                for (what, (s, a)) in ["y", "dx", "dw", "db"]
                    .iter()
                    .zip(stacked.iter().zip(&alone))
                {
                    if let (Some(s), Some(a)) = (s, a) {
                        let shape = format!("{batch}x{inputs}x{outputs}");
                        assert!(bits(&slice(s)) == bits(a), "{what} of model {k} at {shape}");
                    }
                }
            }
            // At most 128 products of unit normals per sum: f32 rounding is
            // far below 1e-5 of the scale, an indexing error O(1).
            for (what, (s, e)) in ["y", "dx", "dw", "db"]
                .iter()
                .zip(stacked.iter().zip(&exact))
            {
                if let (Some(s), Some(e)) = (s, e) {
                    let e = relative_error(s, &e.to_dtype(DType::F32).unwrap());
                    assert!(e < 1e-5, "{what}: {e}");
                }
            }
        }
    }
}

#[test]
fn same_convolution_over_several_panels_matches_candle() {
    // 64 channels at 32x32 fill a 4 MB panel with one image, so a batch of
    // 3 runs as 3 panels and the weight gradient adds over them.
    let (batch, channels, side) = (3, 64, 32);
    let x = normal(11, &[batch, channels, side, side]);
    let w = normal(12, &[8, channels, 3, 3]);
    let b = normal(13, &[8]);
    let r = normal(14, &[batch, 8, side, side]);
    let ours = value_and_gradients(
        |x, w, b| conv2d_same(x, w, Some(b)).unwrap(),
        &x,
        &w,
        &b,
        &r,
    );
    let candle = value_and_gradients(
        |x, w, b| {
            let y = x.conv2d(w, 1, 1, 1, 1).unwrap();
            y.broadcast_add(&b.reshape((1, 8, 1, 1)).unwrap()).unwrap()
        },
        &x,
        &w,
        &b,
        &r,
    );
    for (what, (a, c)) in ["y", "dx", "dw", "db"].iter().zip(ours.iter().zip(&candle)) {
        // Sums of up to 576 (forward) or 3072 (weight gradient) products.
        let e = relative_error(a, c);
        assert!(e < 1e-5, "{what} differs by {e} (relative)");
    }
}

#[test]
fn silu_and_dense_give_candles_bits() {
    // SiLU evaluates candle's own expressions, so forward and gradient must
    // agree exactly; the dense layer makes the one gemm call candle's matmul
    // makes, so its sums run in the same order.
    let x = normal(21, &[256, 300]).affine(3.0, 0.0).unwrap();
    let r = normal(22, &[256, 300]);
    let ours = value_and_gradient(|x| silu(x).unwrap(), &x, &r);
    let candle = value_and_gradient(|x| x.silu().unwrap(), &x, &r);
    for (a, c) in ours.iter().zip(&candle) {
        assert_eq!(common::max_abs_diff(a, c), 0.0);
    }
    // Without a graph (as when sampling) the forward keeps nothing, same bits.
    assert_eq!(
        common::max_abs_diff(&silu(&x).unwrap(), &x.silu().unwrap()),
        0.0
    );
    // (32, 128) -> 768 once differed when the product was cut into panels;
    // the forward now cuts its rows into blocks (uneven ones at batch 100
    // and 129, 16 rows at 32 x 65) and the backward runs its two products
    // single-threaded side by side, which must not change them either.
    for (batch, inputs, outputs) in [
        (64, 32, 64),
        (32, 40, 65),
        (100, 600, 96),
        (129, 256, 300),
        (32, 128, 768),
        (256, 256, 256),
        (256, 64, 1024),
        // Inner dimensions past gemm's 512-wide blocks (the width-1024 MLP).
        (256, 784, 1024),
        (256, 1024, 1024),
    ] {
        let x = normal(23, &[batch, inputs]);
        let w = normal(24, &[outputs, inputs]);
        let b = normal(25, &[outputs]);
        let r = normal(26, &[batch, outputs]);
        let ours = value_and_gradients(|x, w, b| dense(x, w, Some(b)).unwrap(), &x, &w, &b, &r);
        let candle = value_and_gradients(
            |x, w, b| x.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap(),
            &x,
            &w,
            &b,
            &r,
        );
        for (what, (a, c)) in ["y", "dx", "dw", "db"].iter().zip(ours.iter().zip(&candle)) {
            let e = common::max_abs_diff(a, c);
            assert_eq!(e, 0.0, "{what} of [{batch}, {inputs}] -> {outputs}");
        }
        // An input without a gradient (a network's data): the weights'
        // product then runs on row blocks, still the same bits.
        let (wv, bv) = (Var::from_tensor(&w).unwrap(), Var::from_tensor(&b).unwrap());
        let y = dense(&x, wv.as_tensor(), Some(bv.as_tensor())).unwrap();
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (what, v, c) in [("dw", &wv, &candle[2]), ("db", &bv, &candle[3])] {
            let e = common::max_abs_diff(grads.get(v).unwrap(), c);
            assert_eq!(
                e, 0.0,
                "{what} of [{batch}, {inputs}] -> {outputs}, untracked input"
            );
        }
    }
}

#[test]
fn same_convolution_bits_do_not_depend_on_how_many_threads_ran_it() {
    // The kernels split work among rayon's threads; gemm never splits a dot
    // product, so a pool of one thread gives the same bits as the default one.
    let x = normal(1, &[4, 8, 16, 16]);
    let w = normal(2, &[16, 8, 3, 3]);
    let r = normal(3, &[4, 16, 16, 16]);
    let b = Tensor::zeros(16, DType::F32, &Device::Cpu).unwrap();
    let run = || {
        value_and_gradients(
            |x, w, b| conv2d_same(x, w, Some(b)).unwrap(),
            &x,
            &w,
            &b,
            &r,
        )
    };
    let many = run();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(run);
    for (a, b) in many.iter().zip(&one) {
        assert_eq!(common::max_abs_diff(a, b), 0.0);
    }
}

/// A U-Net with every weight perturbed (its output layer starts at zero,
/// which would leave the inner gradients zero), in `dtype`.
fn perturbed_unet(dtype: DType, shape: &[usize], config: &UnetConfig) -> (Params, Precond) {
    let params = Params::new(7);
    let net = Arch::Unet(config.clone())
        .build(shape, None, params.var_builder(dtype, &Device::Cpu))
        .unwrap();
    let values: BTreeMap<String, Tensor> = params
        .named()
        .into_iter()
        .enumerate()
        .map(|(i, (name, var))| {
            let noise = normal(100 + i as u64, var.dims()).to_dtype(dtype).unwrap();
            let value = (var.as_tensor() + (noise * 0.05).unwrap()).unwrap();
            (name, value)
        })
        .collect();
    params.assign(&values, "perturbation").unwrap();
    let model = Precond::new(
        net,
        Framework::EDM.parameterisation(0.5, -1.2, 1.2),
        shape.to_vec(),
        &Device::Cpu,
    );
    (params, model)
}

#[test]
fn unet_gradient_with_the_fast_kernels_matches_candles_ops_in_f64() {
    // f32 runs nn::ops; f64 falls back to candle's convolution, so the two
    // networks share weights (f32 values) but no kernel.
    let shape = [1, 8, 8];
    let config = UnetConfig::with_base(8);
    let (p32, m32) = perturbed_unet(DType::F32, &shape, &config);
    let (p64, m64) = perturbed_unet(DType::F64, &shape, &config);
    let values: BTreeMap<String, Tensor> = p32
        .named()
        .into_iter()
        .map(|(name, v)| (name, v.as_tensor().to_dtype(DType::F64).unwrap()))
        .collect();
    p64.assign(&values, "f32 weights").unwrap();
    let y = normal(5, &[3, 64]);
    let z = normal(6, &[3, 64]);
    let sigma = Tensor::new(&[0.05f32, 0.7, 6.0], &Device::Cpu).unwrap();
    let as64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
    let g32 = denoising_loss(&m32, &y, &sigma, &z, None)
        .unwrap()
        .backward()
        .unwrap();
    let g64 = denoising_loss(&m64, &as64(&y), &as64(&sigma), &as64(&z), None)
        .unwrap()
        .backward()
        .unwrap();
    let mut checked = 0;
    for ((name, v32), (_, v64)) in p32.named().iter().zip(p64.named()) {
        let (a, b) = (g32.get(v32).unwrap(), g64.get(&v64).unwrap());
        let norm = common::sum_sq(b).sqrt();
        let error = common::sum_sq(&(as64(a) - b).unwrap()).sqrt();
        // f32 rounding through a dozen layers: relative errors of 1e-6-1e-5;
        // a wrong kernel gives O(1).
        assert!(
            error <= 1e-4 * norm + 1e-9,
            "{name}: |g32 - g64| = {error:.3e}, |g64| = {norm:.3e}"
        );
        checked += (norm > 0.0) as usize;
    }
    assert!(checked > 20, "only {checked} parameters have a gradient");
}

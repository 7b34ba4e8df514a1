//! Consistency models (THEORY §16): the boundary f(x, sigma_min) = x, iCT's
//! curriculum and pair draw against the normal density integrated
//! numerically, the loss against a row-by-row recomputation and its gradient
//! against the same loss with the target computed apart, and the multistep
//! sampler against Song et al.'s Algorithm 1 written out on a Gaussian's
//! exact consistency function; distillation's teacher step against the
//! samplers' Heun step, its loss against the same terms at that point, the
//! runs' refusals and resuming.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{by_name, gaussian, max_abs, max_abs_diff, temp_dir};
use diffusion_regimes::denoise::Denoiser;
use diffusion_regimes::framework::{Consistency, PairWeights};
use diffusion_regimes::nn::train::{RunData, Trainer};
use diffusion_regimes::nn::{
    consistency_errors, heun_step, Arch, MlpConfig, Params, Precond, TrainOptions,
};
use diffusion_regimes::rng::normal_rows;
use diffusion_regimes::sample::{
    generate, initial_noise, sample, ConsistencySteps, Method, Plan, Schedule,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const DIM: usize = 3;

/// A consistency model on a small random MLP; its output layer is not zero,
/// so F contributes everywhere but at the boundary.
fn model(seed: u64) -> (Precond, Params) {
    network(seed, "consistency")
}

/// A small random MLP on R^DIM behind `framework`'s scalings.
fn network(seed: u64, framework: &str) -> (Precond, Params) {
    let params = Params::new(seed);
    let net = Arch::Mlp(MlpConfig {
        width: 16,
        depth: 2,
    })
    .build(&[DIM], None, params.var_builder(DType::F32, &Device::Cpu))
    .unwrap();
    let framework = by_name(framework).parameterisation(0.5, -1.2, 1.2);
    (
        Precond::new(net, framework, vec![DIM], &Device::Cpu),
        params,
    )
}

fn f32s(t: &Tensor) -> Tensor {
    t.to_dtype(DType::F32).unwrap()
}

#[test]
fn the_boundary_holds_and_away_from_it_the_network_counts() {
    let (model, _) = model(1);
    let x = f32s(&(gaussian(2, 0, 8, DIM) * 3.0).unwrap());
    // sigma_min = 0.002 is not exact in f32: c_out = sd (sigma - 0.002) /
    // sqrt(...) is about 1e-10, so f moves x by 1e-10 |F|.
    assert!(max_abs_diff(&model.denoise(&x, 0.002).unwrap(), &x) < 1e-6);
    assert!(max_abs_diff(&model.denoise(&x, 1.0).unwrap(), &x) > 0.1);
}

#[test]
fn the_curriculum_doubles_from_11_to_1281_levels() {
    let ct = Consistency::new(0.5);
    let steps = 8000; // K' = 8000 / (log2(128) + 1) = 1000
    for (step, count) in [(0, 11), (999, 11), (1000, 21), (3500, 81), (6999, 641)] {
        assert_eq!(ct.level_count(step, steps), count, "step {step}");
    }
    assert_eq!(ct.level_count(7000, steps), 1281);
    assert_eq!(ct.level_count(u64::MAX, steps), 1281);
    let levels = ct.levels(11);
    assert!((levels[0] - 0.002).abs() < 1e-15 && (levels[10] - 80.0).abs() < 1e-12);
    // Uniform in sigma^(1/7).
    let roots: Vec<f64> = levels.iter().map(|l| l.powf(1.0 / 7.0)).collect();
    let gap = roots[1] - roots[0];
    assert!(roots.windows(2).all(|w| (w[1] - w[0] - gap).abs() < 1e-12));
}

/// P(a <= u < b) for u ~ N(mean, std^2), by Simpson's rule on the density.
fn normal_mass(a: f64, b: f64, mean: f64, std: f64) -> f64 {
    let density = |u: f64| (-0.5 * ((u - mean) / std).powi(2)).exp();
    let intervals = 2000;
    let h = (b - a) / intervals as f64;
    let sum: f64 = (0..=intervals)
        .map(|i| {
            let w = match i {
                0 => 1.0,
                i if i == intervals => 1.0,
                i if i % 2 == 1 => 4.0,
                _ => 2.0,
            };
            w * density(a + i as f64 * h)
        })
        .sum();
    sum * h / 3.0 / (std * (2.0 * std::f64::consts::PI).sqrt())
}

#[test]
fn pairs_are_drawn_with_the_lognormal_masses_of_their_intervals() {
    let ct = Consistency::new(0.5);
    let pairs = ct.level_pairs_at(11);
    let levels = pairs.levels().to_vec();
    let mut counts = vec![0usize; levels.len() - 1];
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let draws = 200_000;
    for _ in 0..draws {
        let (lo, hi) = pairs.draw(&mut rng);
        let i = levels.iter().position(|&l| l as f32 == lo).unwrap();
        assert_eq!(levels[i + 1] as f32, hi);
        counts[i] += 1;
    }
    let masses: Vec<f64> = levels
        .windows(2)
        .map(|w| normal_mass(w[0].ln(), w[1].ln(), -1.1, 2.0))
        .collect();
    let total: f64 = masses.iter().sum();
    for (i, (&count, mass)) in counts.iter().zip(&masses).enumerate() {
        let p = mass / total;
        let se = (p * (1.0 - p) / draws as f64).sqrt();
        let got = count as f64 / draws as f64;
        // Five standard errors: ten bins never fail by chance (p ~ 6e-6 each).
        assert!((got - p).abs() < 5.0 * se, "pair {i}: {got} vs {p}");
    }
}

/// Distillation's discretisation: 18 levels at every step, those of
/// consistency training's 18-level stage; Song et al.'s uniform weights
/// draw each of its pairs alike, the continuous ones draw two points one
/// spacing apart with the upper one uniform (in sigma^(1/7)) over the span.
#[test]
fn distillation_draws_pairs_of_18_levels_alike_or_anywhere_between() {
    let cd = Consistency::distillation(0.5);
    for step in [0, 500, 999] {
        assert_eq!(cd.level_count(step, 1000), 18);
    }
    let levels = Consistency::new(0.5).levels(18);
    assert_eq!(cd.level_pairs_at(18).levels(), levels.as_slice());
    // Five standard errors: no bin fails by chance (p ~ 6e-6 each).
    let alike = |counts: &[usize], draws: usize| {
        let p = 1.0 / counts.len() as f64;
        let se = (p * (1.0 - p) / draws as f64).sqrt();
        for (i, &count) in counts.iter().enumerate() {
            let got = count as f64 / draws as f64;
            assert!((got - p).abs() < 5.0 * se, "bin {i}: {got}");
        }
    };
    let draws = 170_000;
    let uniform = Consistency {
        pairs: PairWeights::Uniform,
        ..Consistency::distillation(0.5)
    };
    let pairs = uniform.level_pairs_at(18);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut counts = [0usize; 17];
    for _ in 0..draws {
        let (lo, hi) = pairs.draw(&mut rng);
        let i = levels.iter().position(|&l| l as f32 == lo).unwrap();
        assert_eq!(levels[i + 1] as f32, hi);
        counts[i] += 1;
    }
    alike(&counts, draws);

    assert_eq!(cd.pairs, PairWeights::Continuous);
    let pairs = cd.level_pairs_at(18);
    let root = |s: f32| (s as f64).powf(1.0 / 7.0);
    let (first, last) = (root(0.002), root(80.0));
    let spacing = (last - first) / 17.0;
    let mut counts = [0usize; 10];
    for _ in 0..draws {
        let (lo, hi) = pairs.draw(&mut rng);
        assert!(0.002 * (1.0 - 1e-6) <= lo && lo < hi && hi as f64 <= 80.0 * (1.0 + 1e-6));
        // One spacing apart, up to the f32 rounding of the levels.
        assert!((root(hi) - root(lo) - spacing).abs() < 1e-5, "{lo} {hi}");
        let position = (root(hi) - first - spacing) / (last - first - spacing);
        counts[((position * 10.0) as usize).min(9)] += 1;
    }
    alike(&counts, draws);
}

/// The loss written out: pseudo-Huber distance of f at the two levels over their spacing.
#[test]
fn the_loss_is_its_terms_and_no_gradient_flows_through_the_target() {
    let (model, params) = model(2);
    let b = 6;
    let y = f32s(&gaussian(3, 0, b, DIM));
    let z = f32s(&gaussian(4, 0, b, DIM));
    let lower = Tensor::new(&[0.002f32, 0.05, 0.3, 1.0, 4.0, 30.0], &Device::Cpu).unwrap();
    let upper = Tensor::new(&[0.004f32, 0.07, 0.35, 1.3, 5.0, 40.0], &Device::Cpu).unwrap();
    let errors = consistency_errors(&model, None, &y, (&upper, &lower), &z, None).unwrap();
    let (lo, hi) = (
        lower.to_vec1::<f32>().unwrap(),
        upper.to_vec1::<f32>().unwrap(),
    );
    let c = 0.00054 * (DIM as f64).sqrt();
    let at = |row: usize, level: f32| {
        let x =
            (y.narrow(0, row, 1).unwrap() + (z.narrow(0, row, 1).unwrap() * level as f64)).unwrap();
        model.denoise(&x, level as f64).unwrap()
    };
    for (row, got) in errors.to_vec1::<f32>().unwrap().into_iter().enumerate() {
        let diff = (at(row, hi[row]) - at(row, lo[row])).unwrap();
        let squared: f32 = diff.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        let want = (((squared as f64) + c * c).sqrt() - c) / (hi[row] - lo[row]) as f64;
        assert!(
            (got as f64 - want).abs() < 1e-4 * want.max(1e-3),
            "row {row}: {got} vs {want}"
        );
    }

    // The same loss with its target computed apart, as constants.
    let rows =
        |level: &Tensor| (&y + z.broadcast_mul(&level.reshape((b, 1)).unwrap()).unwrap()).unwrap();
    let target_values = model.forward(&rows(&lower), &lower, None).unwrap();
    let constant = Tensor::new(target_values.to_vec2::<f32>().unwrap(), &Device::Cpu).unwrap();
    let apart = |target: &Tensor| {
        let d = (model.forward(&rows(&upper), &upper, None).unwrap() - target).unwrap();
        let distance = ((d.sqr().unwrap().sum(1).unwrap() + c * c)
            .unwrap()
            .sqrt()
            .unwrap()
            - c)
            .unwrap();
        (distance / (&upper - &lower).unwrap())
            .unwrap()
            .mean_all()
            .unwrap()
    };
    let grads = |loss: Tensor| {
        let g = loss.backward().unwrap();
        params
            .named()
            .into_iter()
            .map(|(name, v)| (name, g.get(&v).unwrap().clone()))
            .collect::<Vec<_>>()
    };
    let ours = grads(errors.mean_all().unwrap());
    let detached = grads(apart(&constant));
    // With the gradient through the target the test would see it.
    let through = grads(apart(&target_values));
    let mut largest_through = 0f64;
    for ((name, a), ((_, b), (_, t))) in ours.iter().zip(detached.iter().zip(&through)) {
        assert!(max_abs_diff(a, b) < 1e-5, "{name}");
        largest_through = largest_through.max(max_abs_diff(a, t));
    }
    assert!(largest_through > 1e-3, "{largest_through}");
}

/// f(x, sigma) = x sd / sqrt(sd^2 + sigma^2): the exact consistency function
/// of N(0, sd^2 I), whose ODE scales x by sqrt(sd^2 + sigma^2).
struct GaussianEndpoint(f64);

impl Denoiser for GaussianEndpoint {
    fn denoise(&self, x: &Tensor, sigma: f64) -> diffusion_regimes::Result<Tensor> {
        Ok((x * (self.0 / (self.0 * self.0 + sigma * sigma).sqrt()))?)
    }

    fn dim(&self) -> usize {
        DIM
    }
}

#[test]
fn multistep_sampling_is_song_et_al_algorithm_1() {
    let f = GaussianEndpoint(0.7);
    let taus = [80.0, 2.5, 0.3];
    let mut sigmas = taus.to_vec();
    sigmas.push(0.0);
    let plan = Plan {
        sigmas,
        integrator: Box::new(Method::Consistency(ConsistencySteps::default())),
    };
    let indices: Vec<u64> = (0..5).collect();
    let got = generate(&f, &plan, 7, &indices, DType::F64, &Device::Cpu, None).unwrap();

    let (z, mut streams) = initial_noise(7, &indices, DIM, DType::F64, &Device::Cpu).unwrap();
    let mut x = f.denoise(&(z * taus[0]).unwrap(), taus[0]).unwrap();
    for &tau in &taus[1..] {
        let noise = normal_rows(&mut streams, DIM, DType::F64, &Device::Cpu).unwrap();
        let spread = (tau * tau - 0.002f64 * 0.002).sqrt();
        x = f
            .denoise(&(x + (noise * spread).unwrap()).unwrap(), tau)
            .unwrap();
    }
    assert!(max_abs_diff(&got, &x) < 1e-12);

    // The native sampler is the one-step map f(80 z, 80).
    let native = by_name("consistency").native(40).unwrap();
    assert_eq!(native.sigmas, vec![80.0, 0.0]);
    let one = generate(&f, &native, 7, &indices, DType::F64, &Device::Cpu, None).unwrap();
    let (z, _) = initial_noise(7, &indices, DIM, DType::F64, &Device::Cpu).unwrap();
    let want = f.denoise(&(z * 80.0).unwrap(), 80.0).unwrap();
    assert!(max_abs_diff(&one, &want) < 1e-12);
}

/// The teacher's step, each row at its own pair of levels, is the samplers'
/// Heun step (EDM's Algorithm 1, the second-order correction included) run
/// on that row alone; and distillation's loss is consistency training's
/// terms with the lower point moved there.
#[test]
fn distillation_steps_by_the_teachers_heun_step() {
    // A random EDM network as the teacher.
    let (teacher, _) = network(9, "edm");
    let (model, _) = model(2);
    let b = 4;
    let x = f32s(&(gaussian(5, 0, b, DIM) * 2.0).unwrap());
    let from = [0.01f32, 0.4, 3.0, 60.0];
    let to = [0.002f32, 0.3, 2.2, 45.0];
    let (from_t, to_t) = (
        Tensor::new(&from, &Device::Cpu).unwrap(),
        Tensor::new(&to, &Device::Cpu).unwrap(),
    );
    let stepped = heun_step(&teacher, &x, (&from_t, &to_t), None).unwrap();
    let heun = Plan::new(&Schedule::default(), Method::Heun).unwrap();
    for row in 0..b {
        let alone = sample(
            &teacher,
            &x.narrow(0, row, 1).unwrap(),
            &[from[row] as f64, to[row] as f64],
            heun.integrator.as_ref(),
            &mut [],
            None,
        )
        .unwrap();
        let got = stepped.narrow(0, row, 1).unwrap();
        // The same f32 operations but for the slopes' mean, (a + b) / 2
        // against a / 2 + b / 2: a few ulps of the point's scale.
        let e = max_abs_diff(&got, &alone) / max_abs(&alone).max(1.0);
        assert!(e < 1e-5, "row {row}: {e}");
    }

    // The loss's terms: d(f(x, s), f(teacher step, l)) / (s - l).
    let y = f32s(&gaussian(6, 0, b, DIM));
    let z = f32s(&gaussian(7, 0, b, DIM));
    let errors = consistency_errors(&model, Some(&teacher), &y, (&from_t, &to_t), &z, None)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let c = 0.00054 * (DIM as f64).sqrt();
    for row in 0..b {
        let pick = |t: &Tensor| t.narrow(0, row, 1).unwrap();
        let x = (pick(&y) + (pick(&z) * from[row] as f64).unwrap()).unwrap();
        let (s, l) = (pick(&from_t), pick(&to_t));
        let lower = heun_step(&teacher, &x, (&s, &l), None).unwrap();
        let diff = (model.denoise(&x, from[row] as f64).unwrap()
            - model.denoise(&lower, to[row] as f64).unwrap())
        .unwrap();
        let squared: f32 = diff.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        let want = (((squared as f64) + c * c).sqrt() - c) / (from[row] - to[row]) as f64;
        let got = errors[row] as f64;
        assert!(
            (got - want).abs() < 1e-4 * want.max(1e-3),
            "row {row}: {got} vs {want}"
        );
    }
}

/// A distilling run needs a teacher of its examples' shape (refused before
/// its folder is written); no other framework takes one; and a distilling
/// run resumed halfway ends with the uninterrupted run's checkpoint.
#[test]
fn distillation_runs_check_their_teacher_and_resume_exactly() {
    let dir = temp_dir("distillation");
    let train = f32s(&(gaussian(8, 0, 8, DIM) * 0.5).unwrap());
    let small = TrainOptions {
        width: 16,
        depth: Some(2),
        steps: 20,
        batch: 8,
        warmup: 2,
        checkpoint_every: 10,
        eval_points: 0,
        ..TrainOptions::default()
    };
    let start = |name: &str, options: &TrainOptions, train: &Tensor| {
        let config = options.config("test", train)?.check()?;
        Trainer::start(&dir.join(name), config, RunData::new(train), &Device::Cpu)
    };
    let mut edm = start("teacher", &small, &train).unwrap();
    edm.run(&mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();

    let distill = TrainOptions {
        framework: by_name("consistency-distillation"),
        teacher: Some(dir.join("teacher")),
        ..small.clone()
    };
    let untaught = TrainOptions {
        teacher: None,
        ..distill.clone()
    };
    let e = start("untaught", &untaught, &train)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--teacher"), "{e}");
    let taught_edm = TrainOptions {
        teacher: distill.teacher.clone(),
        ..small.clone()
    };
    let e = start("edm", &taught_edm, &train).err().unwrap().to_string();
    assert!(e.contains("teacher") && e.contains("edm"), "{e}");
    let wide = f32s(&gaussian(8, 0, 8, DIM + 1));
    let e = start("wide", &distill, &wide).err().unwrap().to_string();
    assert!(e.contains("shaped [3]") && e.contains("[4]"), "{e}");
    assert!(!dir.join("wide").exists());

    let mut whole = start("whole", &distill, &train).unwrap();
    whole
        .run(&mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    let mut half = start("half", &distill, &train).unwrap();
    // Stopped at step 11, before its files: it resumes from step 10's checkpoint.
    half.run(&mut |p| match p.step {
        11 => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    })
    .unwrap();
    let mut resumed = Trainer::resume(&dir.join("half"), None, &Device::Cpu).unwrap();
    resumed
        .run(&mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    let last = |run: &str| {
        std::fs::read(dir.join(run).join("checkpoints/step-00000020.safetensors")).unwrap()
    };
    assert!(last("whole") == last("half"));
    // Distillation trained: its last checkpoint moved from the first.
    let first = std::fs::read(dir.join("whole/checkpoints/step-00000010.safetensors")).unwrap();
    assert!(first != last("whole"));
}

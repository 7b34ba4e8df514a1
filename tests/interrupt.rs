//! `jobs::interrupt` (Ctrl-C in Python) stops sampling at its next
//! evaluation and training before its next update, with
//! `Error::Interrupted`; an interrupted run resumes to the uninterrupted
//! run's bits. The flag is process-wide, so this file is its own test binary
//! and runs its steps in one test.

mod common;

use std::ops::ControlFlow;

use candle_core::{DType, Device};
use common::{gaussian, temp_dir};
use diffusion_regimes::denoise::EmpiricalDenoiser;
use diffusion_regimes::jobs::{clear_interrupt, interrupt};
use diffusion_regimes::nn::train::{CheckedTrainConfig, RunData, Trainer};
use diffusion_regimes::nn::TrainOptions;
use diffusion_regimes::sample::{generate, Method, Plan, Schedule};
use diffusion_regimes::Error;

/// A small MLP run of 30 steps, checkpointed every 10.
fn config(train: &candle_core::Tensor) -> CheckedTrainConfig {
    let options = TrainOptions {
        width: 32,
        depth: Some(2),
        steps: 30,
        batch: 8,
        lr: 2e-3,
        warmup: 5,
        ema_decay: 0.99,
        seed: 3,
        checkpoint_every: 10,
        log_every: 5,
        ..TrainOptions::default()
    };
    options.config("test", train).unwrap().check().unwrap()
}

/// The bytes of the step-30 checkpoint.
fn weights(dir: &std::path::Path) -> Vec<u8> {
    std::fs::read(dir.join("checkpoints/step-00000030.safetensors")).unwrap()
}

#[test]
fn interrupts_stop_sampling_and_training_and_training_resumes_exactly() {
    let train = gaussian(1, 0, 16, 4);
    let d = EmpiricalDenoiser::new(&train).unwrap();
    let plan = Plan::new(&Schedule::default(), Method::Heun).unwrap();
    let draw = || generate(&d, &plan, 0, &[0, 1], DType::F64, &Device::Cpu, None);
    let before = draw().unwrap();
    interrupt();
    assert!(matches!(draw(), Err(Error::Interrupted)));
    clear_interrupt();
    let after = draw().unwrap();
    let gap = (before - after).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(gap.to_scalar::<f64>().unwrap(), 0.0);

    let train = train.to_dtype(DType::F32).unwrap();
    let whole = temp_dir("interrupt_whole");
    let mut t = Trainer::start(&whole, config(&train), RunData::new(&train), &Device::Cpu).unwrap();
    t.run(&mut |_| ControlFlow::Continue(())).unwrap();

    let stopped = temp_dir("interrupt_stopped");
    let mut t =
        Trainer::start(&stopped, config(&train), RunData::new(&train), &Device::Cpu).unwrap();
    let e = t
        .run(&mut |p| {
            if p.step == 17 {
                interrupt();
            }
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(matches!(e, Error::Interrupted), "{e}");
    assert_eq!(t.step(), 17, "no update after the interrupt");
    drop(t);
    clear_interrupt();
    let mut resumed = Trainer::resume(&stopped, None, &Device::Cpu).unwrap();
    assert_eq!(resumed.step(), 10, "the last checkpoint stands");
    resumed.run(&mut |_| ControlFlow::Continue(())).unwrap();
    let (a, b) = (weights(&whole), weights(&stopped));
    assert!(
        !a.is_empty() && a == b,
        "the resumed run ends with the whole run's bits"
    );
}

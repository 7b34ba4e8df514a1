//! A mutation harness for every parser of the crate: it calls the parsing
//! functions in-process on mutated copies of valid files (bit flips,
//! truncations, insertions, huge length fields, splices) and counts how each
//! ended: parsed, refused with an error, or panicked. A parser may refuse
//! anything, but must never panic.
//!
//!   cargo run --release --example fuzz_parsers -- --iterations 1000000 [--seed S] [--only NAME]
//!
//! Exits 1 when any parser panicked, printing the first message of each.
//! tests/fuzz_parsers.rs runs a short pass of the same harness.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use diffusion_regimes::data::npy::{encode_npy, read_npy};
use diffusion_regimes::data::npz::read_npz;
use diffusion_regimes::data::{
    load_distribution, write_png, ImageFormat, ImageImport, Synthetic, SyntheticSpec,
};
use diffusion_regimes::nn::checkpoint::{load_model, read_checkpoint, read_state, Weights};
use diffusion_regimes::nn::optim::AdamWConfig;
use diffusion_regimes::nn::train::{RunData, Sampling, TrainConfig, Trainer};
use diffusion_regimes::nn::{Arch, MlpConfig};
use diffusion_regimes::sweep::SweepConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a parser did with one mutant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub parsed: u64,
    pub refused: u64,
    pub panicked: u64,
    /// The first panic's message.
    pub first_panic: Option<String>,
}

/// One parser under test: the file it reads inside `dir`, the valid
/// contents it starts from, and the call that parses it.
struct Target {
    name: &'static str,
    file: PathBuf,
    seeds: Vec<Vec<u8>>,
    parse: Box<dyn Fn() -> bool>,
}

/// Runs `iterations` mutants through each parser (all, or `only`); the
/// counts per parser, in order. The files live in `work`.
pub fn run(iterations: u64, seed: u64, only: Option<&str>, work: &Path) -> Vec<(String, Counts)> {
    let targets = targets(work);
    let last_panic = Arc::new(Mutex::new(String::new()));
    let recorder = last_panic.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Where in the crate it panicked: the backtrace's frames of our code.
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        let ours: Vec<&str> = trace
            .lines()
            .filter(|l| {
                l.contains("diffusion_regimes::") || l.contains("/work/") || l.contains("./src/")
            })
            .take(8)
            .collect();
        *recorder.lock().unwrap() = format!("{info}\n{}", ours.join("\n"));
    }));
    let mut report = Vec::new();
    for target in targets.iter().filter(|t| only.is_none_or(|o| o == t.name)) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(target.name));
        let mut counts = Counts::default();
        let original = std::fs::read(&target.file).unwrap();
        for _ in 0..iterations {
            let mutant = mutate(&target.seeds, &mut rng);
            std::fs::write(&target.file, &mutant).unwrap();
            match catch_unwind(AssertUnwindSafe(|| (target.parse)())) {
                Ok(true) => counts.parsed += 1,
                Ok(false) => counts.refused += 1,
                Err(_) => {
                    counts.panicked += 1;
                    if counts.first_panic.is_none() {
                        let input =
                            String::from_utf8_lossy(&mutant[..mutant.len().min(300)]).into_owned();
                        let message = last_panic.lock().unwrap().clone();
                        counts.first_panic = Some(format!(
                            "{message}\n  on input (first 300 bytes, lossy): {input:?}"
                        ));
                    }
                }
            }
        }
        std::fs::write(&target.file, original).unwrap();
        report.push((target.name.to_string(), counts));
    }
    std::panic::set_hook(default_hook);
    report
}

/// One mutant of a randomly chosen seed: 1-4 edits of random kinds.
fn mutate(seeds: &[Vec<u8>], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..=4) {
        let at = rng.gen_range(0..=bytes.len());
        match rng.gen_range(0..6) {
            // Flip 1-8 bits.
            0 if !bytes.is_empty() => {
                for _ in 0..rng.gen_range(1..=8) {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            // Truncate.
            1 => bytes.truncate(at),
            // Insert 1-16 random bytes.
            2 => {
                let insert: Vec<u8> = (0..rng.gen_range(1..=16)).map(|_| rng.gen()).collect();
                bytes.splice(at..at, insert);
            }
            // A huge length field: 4 or 8 bytes of a large value, either endianness.
            3 => {
                let value: u64 = [u64::MAX, 1 << 31, u32::MAX as u64, 1 << 40, i64::MAX as u64]
                    [rng.gen_range(0..5)];
                let field = match rng.gen_bool(0.5) {
                    true => value.to_le_bytes(),
                    false => value.to_be_bytes(),
                };
                let width = [4, 8][rng.gen_range(0..2)];
                let end = (at + width).min(bytes.len());
                bytes.splice(at..end, field[..width].iter().copied());
            }
            // A huge number in text: digits inserted.
            4 => {
                let digits = [
                    "9999999999",
                    "99999999999999999999",
                    "-1",
                    "1e308",
                    "NaN",
                    "0",
                ][rng.gen_range(0..6)];
                bytes.splice(at..at, digits.bytes());
            }
            // Splice: a piece of some seed copied in.
            _ => {
                let other = &seeds[rng.gen_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.gen_range(0..other.len());
                    let to = rng.gen_range(from..=other.len().min(from + 64));
                    bytes.splice(at..at, other[from..to].iter().copied());
                }
            }
        }
    }
    bytes
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Every parser, with valid seed files written into `work`.
fn targets(work: &Path) -> Vec<Target> {
    std::fs::create_dir_all(work).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let fixture = |name: &str| std::fs::read(fixtures.join(name)).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = work.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let tensor = Tensor::arange(0f32, 12.0, &Device::Cpu)
        .unwrap()
        .reshape((3, 4))
        .unwrap();
    let npy = vec![
        encode_npy(&tensor, DType::F32).unwrap(),
        encode_npy(&tensor, DType::F64).unwrap(),
        fixture("images/gray_u8.npy"),
    ];
    let npz = vec![
        fixture("compressed.npz"),
        fixture("features.npz"),
        fixture("images/labels.npz"),
    ];
    let idx = vec![
        fixture("images/mnist-idx3-ubyte"),
        fixture("images/mnist-idx3-ubyte.gz"),
    ];
    let cifar = vec![fixture("images/cifar10/data_batch_2.bin")];
    let png_dir = work.join("png");
    std::fs::create_dir_all(&png_dir).unwrap();
    let pixels: Vec<u8> = (0..3 * 6 * 5).map(|i| (i * 7 % 256) as u8).collect();
    write_png(&png_dir.join("b.png"), &pixels, 3, 6, 5).unwrap();
    write_png(&png_dir.join("a.png"), &pixels, 3, 6, 5).unwrap();
    let png = vec![std::fs::read(png_dir.join("a.png")).unwrap()];
    let (run, checkpoint) = tiny_run(&work.join("run"));
    let distribution = work.join("distribution");
    let spec = SyntheticSpec::Molrg {
        ambient: 6,
        ranks: vec![2, 1],
        floor: 0.01,
    };
    Synthetic::new(spec, 3)
        .unwrap()
        .save(&distribution)
        .unwrap();
    let sweeps = [
        include_str!("../experiments/configs/quickstart.toml"),
        include_str!("../experiments/configs/images_mnist_cpu.toml"),
        include_str!("../experiments/configs/conditional_mnist.toml"),
    ];
    let sweep_file = file("sweep.toml", sweeps[0].as_bytes());
    vec![
        target("npy", file("a.npy", &npy[0]), npy, {
            let p = work.join("a.npy");
            move || read_npy(&p).is_ok()
        }),
        target("npz", file("a.npz", &npz[0]), npz, {
            let p = work.join("a.npz");
            move || read_npz(&p, None).is_ok() | read_npz(&p, Some("labels")).is_ok()
        }),
        target("idx", file("images-idx3-ubyte", &idx[0]), idx, {
            let p = work.join("images-idx3-ubyte");
            move || import(ImageFormat::Idx, &p)
        }),
        target("cifar10", file("data_batch_1.bin", &cifar[0]), cifar, {
            let p = work.join("data_batch_1.bin");
            move || import(ImageFormat::Cifar10, &p)
        }),
        target("png-dir", png_dir.join("a.png"), png, move || {
            import(ImageFormat::PngDir, &png_dir)
        }),
        target(
            "checkpoint",
            checkpoint.clone(),
            vec![std::fs::read(&checkpoint).unwrap()],
            {
                let (run, checkpoint) = (run.clone(), checkpoint.clone());
                move || {
                    read_checkpoint(&checkpoint).is_ok()
                        & load_model(&run, Weights::Ema, &Device::Cpu).is_ok()
                }
            },
        ),
        target(
            "state.json",
            run.join("state.json"),
            vec![std::fs::read(run.join("state.json")).unwrap()],
            {
                let run = run.clone();
                move || {
                    read_state(&run).is_ok()
                        & load_model(&run, Weights::Model, &Device::Cpu).is_ok()
                }
            },
        ),
        target(
            "sweep.toml",
            sweep_file,
            sweeps.iter().map(|s| s.as_bytes().to_vec()).collect(),
            {
                let p = work.join("sweep.toml");
                move || SweepConfig::load(&p).is_ok()
            },
        ),
        target(
            "distribution.json",
            distribution.join("distribution.json"),
            vec![std::fs::read(distribution.join("distribution.json")).unwrap()],
            move || {
                Synthetic::load(&distribution).is_ok() & load_distribution(&distribution).is_ok()
            },
        ),
    ]
}

/// Reads `path` as images of `format`, downsampled to 4x4 as an import would.
fn import(format: ImageFormat, path: &Path) -> bool {
    let import = ImageImport {
        format,
        size: Some([4, 4]),
        grayscale: true,
        limit: None,
        array: None,
        labels: None,
    };
    import.read(path).is_ok()
}

fn target(
    name: &'static str,
    file: PathBuf,
    seeds: Vec<Vec<u8>>,
    parse: impl Fn() -> bool + 'static,
) -> Target {
    Target {
        name,
        file,
        seeds,
        parse: Box::new(parse),
    }
}

/// A finished 2-step run of a tiny MLP in `dir`: the folder and its checkpoint.
fn tiny_run(dir: &Path) -> (PathBuf, PathBuf) {
    let _ = std::fs::remove_dir_all(dir);
    let config = TrainConfig {
        data: "fuzz".into(),
        n: 4,
        subset_seed: 0,
        sample_shape: vec![3],
        arch: Arch::Mlp(MlpConfig { width: 8, depth: 1 }),
        framework: Default::default(),
        sigma_data: 0.5,
        p_mean: -1.2,
        p_std: 1.2,
        steps: 2,
        batch: 4,
        sampling: Sampling::Replacement,
        lr: 1e-3,
        warmup: 1,
        adam: AdamWConfig::default(),
        clip: 1.0,
        ema_decay: 0.9,
        seed: 0,
        checkpoint_every: 2,
        log_every: 1,
        eval_every: 0,
        eval_points: 0,
        target: Default::default(),
        labels: None,
        init: None,
        teacher: None,
    };
    let train = Tensor::arange(0f32, 12.0, &Device::Cpu)
        .unwrap()
        .reshape((4, 3))
        .unwrap();
    let mut trainer = Trainer::start(
        dir,
        config.check().unwrap(),
        RunData::new(&train),
        &Device::Cpu,
    )
    .unwrap();
    trainer
        .run(&mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    (
        dir.to_path_buf(),
        dir.join("checkpoints/step-00000002.safetensors"),
    )
}

/// A folder for the mutants: in memory (/dev/shm) where there is one, as a
/// file written per mutant costs milliseconds on some disks.
pub fn work_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = match shm.is_dir() {
        true => shm.to_path_buf(),
        false => std::env::temp_dir(),
    };
    base.join(format!("regimes-fuzz-{}", std::process::id()))
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let iterations = flag("--iterations").map_or(10_000, |v| v.parse().expect("--iterations N"));
    let seed = flag("--seed").map_or(0, |v| v.parse().expect("--seed S"));
    let work = work_dir();
    let started = std::time::Instant::now();
    let report = run(iterations, seed, flag("--only").map(String::as_str), &work);
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>10}",
        "parser", "mutants", "parsed", "refused", "panicked"
    );
    let mut failed = false;
    for (name, c) in &report {
        println!(
            "{name:<18} {iterations:>10} {:>10} {:>10} {:>10}",
            c.parsed, c.refused, c.panicked
        );
        if let Some(message) = &c.first_panic {
            failed = true;
            eprintln!("{name}: first panic: {message}");
        }
    }
    eprintln!("seed {seed}, {:.0} s", started.elapsed().as_secs_f64());
    match failed {
        true => std::process::ExitCode::FAILURE,
        false => std::process::ExitCode::SUCCESS,
    }
}

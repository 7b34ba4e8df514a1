//! Choosing where tensors live: the CPU always, a CUDA GPU with the `cuda` feature.

use candle_core::Device;

use crate::{Error, Result};

/// The device named by the environment variable `var` (`cpu` when unset),
/// e.g. `BENCH_DEVICE=cuda cargo bench --features cuda`.
pub fn device_from_env(var: &str) -> Result<Device> {
    device(&std::env::var(var).unwrap_or_else(|_| "cpu".into()))
}

/// The device named `cpu` or `cuda` (GPU 0), with a message that says how to
/// get CUDA when this binary cannot use it.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if !cfg!(feature = "cuda") => Err(Error::invalid(
            "--device",
            name,
            "this binary was built without CUDA; rebuild with `cargo build --release --features cuda` on a machine with the CUDA toolkit",
        )),
        "cuda" => Device::new_cuda(0).map_err(|e| {
            Error::invalid("--device", name, format!("no usable CUDA GPU is visible ({e})"))
        }),
        _ => Err(Error::invalid("--device", name, "use cpu or cuda")),
    }
}

"""The empirical denoiser as a numpy user writes it (THEORY §4): GEMM logits,
streaming over chunks of 8192 training points with a running maximum. The
peer that benches/empirical_denoiser.rs runs beside the crate on the same
shape; the data are numpy's own standard normals.

Usage: python3 scripts/numpy_empirical_peer.py B N n f32|f64 [SIGMA, default 1]
Prints one line: `numpy_ms=<median of 5 calls after a warm-up> gemm_ms=<the same for one bare GEMM>`.
"""
import sys
import time

import numpy as np


def empirical(train, half_sq, x, sigma, chunk=8192):
    top = np.full((x.shape[0], 1), -np.inf, dtype=x.dtype)
    total = np.zeros((x.shape[0], 1), x.dtype)
    weighted = np.zeros_like(x)
    for i in range(0, train.shape[0], chunk):
        y = train[i:i + chunk]
        logits = (x @ y.T - half_sq[None, i:i + chunk]) / sigma ** 2
        new_top = np.maximum(top, logits.max(1, keepdims=True))
        rescale = np.exp(top - new_top)
        w = np.exp(logits - new_top)
        total = total * rescale + w.sum(1, keepdims=True)
        weighted = weighted * rescale + w @ y
        top = new_top
    return weighted / total


def median_seconds(f, reps=5):
    f()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[reps // 2]


def main():
    batch, count, dim = (int(a) for a in sys.argv[1:4])
    dtype = {"f32": np.float32, "f64": np.float64}[sys.argv[4]]
    sigma = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    rng = np.random.default_rng(0)
    train = rng.standard_normal((count, dim)).astype(dtype)
    x = rng.standard_normal((batch, dim)).astype(dtype)
    half_sq = 0.5 * (train ** 2).sum(1)
    denoise = median_seconds(lambda: empirical(train, half_sq, x, sigma))
    gemm = median_seconds(lambda: x @ train.T)
    print(f"numpy_ms={denoise * 1e3:.3f} gemm_ms={gemm * 1e3:.3f}")


if __name__ == "__main__":
    main()

"""Sampling with the empirical denoiser as a numpy user writes it: EDM's
Euler on the probability-flow ODE, 18 noise levels from 80 to 0.002
(rho = 7) then 0, from 80 z, z standard normal; the denoiser is
numpy_empirical_peer.empirical. The peer of scripts/bench_sampling.sh.

Usage: python3 scripts/numpy_sampling_peer.py TRAIN.npy SAMPLES
Prints one line: `numpy_sampling_s=<wall seconds of the 18 steps>`.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_empirical_peer import empirical  # noqa: E402


def sigmas(steps=18, smin=0.002, smax=80.0, rho=7.0):
    i = np.arange(steps) / (steps - 1)
    s = (smax ** (1 / rho) + i * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    # Python floats: numpy float64 scalars would promote the f32 samples to f64.
    return [float(v) for v in s] + [0.0]


def main():
    train = np.load(sys.argv[1])
    count = int(sys.argv[2])
    half_sq = 0.5 * (train ** 2).sum(1)
    x = 80.0 * np.random.default_rng(0).standard_normal((count, train.shape[1])).astype(train.dtype)
    start = time.perf_counter()
    levels = sigmas()
    for s, s_next in zip(levels[:-1], levels[1:]):
        d = (x - empirical(train, half_sq, x, s)) / s
        x = x + (s_next - s) * d
    assert x.dtype == train.dtype, x.dtype
    print(f"numpy_sampling_s={time.perf_counter() - start:.2f}")


if __name__ == "__main__":
    main()

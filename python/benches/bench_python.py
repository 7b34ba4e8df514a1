"""The Python package's overhead, measured in one run (BENCHMARKS.md, "Python").

For the shapes of benches/empirical_denoiser.rs (B = 256 queries against N
training rows of dimension n, f32) it times `dr.denoiser("empirical",
train).denoise(x, sigma)` from Python and the very same Rust call on the same
objects timed inside Rust (`_native._time_denoise`), then `dr.sample` (Heun,
18 steps) against `_native._time_sample`, and the per-evaluation cost of a
Python callable denoiser (a lambda around the same denoiser) over the
built-in one. Medians of --repeats alternating runs.

    target/venv/bin/python python/benches/bench_python.py [--repeats 5] [--quick]
"""

import argparse
import statistics
import time

import numpy as np

import diffusion_regimes as dr
from diffusion_regimes import _native


def seconds(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def interleaved(rust, python, repeats):
    """Medians of `repeats` alternating timings of the Rust call (timed in
    Rust) and the Python call, so the machine's drift hits both alike."""
    r, p = [], []
    for _ in range(repeats):
        r.append(rust())
        p.append(seconds(python))
    return statistics.median(r), statistics.median(p)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small shapes only")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shapes = [(1000, 64), (10000, 784), (50000, 784)] if not args.quick else [(1000, 64)]
    print("| call | shape | Rust (ms) | Python (ms) | Python / Rust |")
    print("| --- | --- | --- | --- | --- |")
    for n_train, n in shapes:
        train = rng.standard_normal((n_train, n)).astype(np.float32)
        x = (train[:256] + rng.standard_normal((256, n)).astype(np.float32)).astype(np.float32)
        d = dr.denoiser("empirical", train)
        sigma = 1.0
        d.denoise(x, sigma)  # warm-up: the first call faults in its buffers
        rust, py = interleaved(lambda: _native._time_denoise(d, x, sigma, 1)[0],
                               lambda: d.denoise(x, sigma), args.repeats)
        print(f"| denoise | B=256, N={n_train}, n={n} | {rust * 1e3:.2f} | {py * 1e3:.2f} | {py / rust:.3f} |")
    train = rng.standard_normal((1000, 64)).astype(np.float32)
    d = dr.denoiser("empirical", train)
    rust, py = interleaved(lambda: _native._time_sample(d, 256, 18, 1)[0],
                           lambda: dr.sample(d, seeds=256), args.repeats)
    print(f"| sample (Heun, 18 steps) | 256 seeds, N=1000, n=64 | {rust * 1e3:.2f} | {py * 1e3:.2f} | {py / rust:.3f} |")
    evaluations = 2 * 18 - 1
    wrapped, built_in = interleaved(
        lambda: seconds(lambda: dr.sample(lambda v, s: d.denoise(v, s), seeds=256, shape=64)),
        lambda: dr.sample(d, seeds=256), args.repeats)
    print()
    print(f"A Python callable around the same denoiser: {wrapped * 1e3:.2f} ms for the same sampling, "
          f"{(wrapped - built_in) / evaluations * 1e6:.1f} us more per evaluation ({evaluations} evaluations of a "
          f"[256, 64] batch: the copies into and out of numpy and the GIL hand-over).")


if __name__ == "__main__":
    main()

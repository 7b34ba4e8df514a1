"""How much the memorizer's sampler matters (docs/guide/sweeps.md): on the
quickstart's data and noise (MoLRG, two 6-dim subspaces in R^32, seed 0; the
nested training sets of subset seed 0; samples 0..199 of seed 0, 18 steps),
the fraction of samples that Heun and Euler send to different training
points, per N.

    target/venv/bin/python scripts/memorizer_sampler.py
"""

import numpy as np

import diffusion_regimes as dr

examples = dr.molrg(32, ranks=[6, 6], seed=0).sample(1024).astype(np.float32)
print("| N | samples whose training point differs (Heun vs Euler) |")
print("| --- | --- |")
for n in (16, 64, 256, 1024):
    train = dr.training_set(examples, n, seed=0)
    memorizer = dr.denoiser("empirical", train)
    heun = dr.sample(memorizer, seeds=200, sampler="heun")
    euler = dr.sample(memorizer, seeds=200, sampler="euler")
    moved = dr.nearest(heun, train, k=1)[0][:, 0] != dr.nearest(euler, train, k=1)[0][:, 0]
    print(f"| {n} | {moved.mean():.3f} |")

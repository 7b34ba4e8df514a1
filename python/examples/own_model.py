"""Your own model next to the exact memorizing denoiser, from the same noise.

Adapt `train_model` to your network: anything callable as f(x, sigma) ->
D(x; sigma) on batches [B, n] (a lambda around a torch model in eval mode,
say) is a denoiser for diffusion_regimes. This script

1. draws a training set of N points from a mixture of low-rank Gaussians,
2. trains a small denoiser in Python on it (a PyTorch MLP when torch is
   installed, otherwise a numpy random-feature network whose output layer is
   fitted by least squares on the EDM loss),
3. samples that model and the memorizing denoiser of the same training set
   from the same crate noise (Heun, 18 steps),
4. scores them: RP between the two, GL and the d1/d2 memorization of each,
   with bootstrap intervals,
5. draws the samples over the training set (matplotlib, if installed).

    python python/examples/own_model.py --n 8 --out own_model.png
"""

import argparse
import sys

import numpy as np

import diffusion_regimes as dr

SIGMA_DATA = 0.5


def edm_scalings(sigma):
    """c_skip, c_out, c_in, c_noise of EDM's preconditioning (THEORY §3)."""
    total = sigma**2 + SIGMA_DATA**2
    return SIGMA_DATA**2 / total, sigma * SIGMA_DATA / np.sqrt(total), 1 / np.sqrt(total), np.log(sigma) / 4


def train_numpy(train, features=512, draws=128, seed=0):
    """F(c_in x, c_noise) = relu([c_in x, c_noise] W + b) A with W, b random
    and A fitted by least squares to the EDM target over noisy
    copies of the training set: a model defined and trained in numpy."""
    rng = np.random.default_rng(seed)
    n = train.shape[1]
    w = rng.standard_normal((n + 1, features)) / np.sqrt(n + 1)
    b = rng.uniform(-1, 1, features)

    def hidden(x, sigma):
        _, _, c_in, c_noise = edm_scalings(sigma)
        inputs = np.concatenate([c_in * x, np.full((len(x), 1), c_noise)], axis=1)
        return np.maximum(inputs @ w + b, 0)

    rows, targets = [], []
    for _ in range(draws):
        # Every noise level the sampler visits (0.002 .. 80), evenly in log sigma.
        sigma = np.exp(rng.uniform(np.log(0.002), np.log(80.0)))
        x = train + sigma * rng.standard_normal(train.shape)
        c_skip, c_out, _, _ = edm_scalings(sigma)
        rows.append(hidden(x, sigma))
        targets.append((train - c_skip * x) / c_out)
    h, t = np.concatenate(rows), np.concatenate(targets)
    a = np.linalg.solve(h.T @ h + 1e-3 * np.eye(features), h.T @ t)

    def model(x, sigma):
        c_skip, c_out, _, _ = edm_scalings(sigma)
        return c_skip * x + c_out * (hidden(x, sigma) @ a)

    return model


def train_torch(train, steps=1500, seed=0):
    """A PyTorch MLP trained with EDM's loss, wrapped as f(x, sigma)."""
    import torch

    torch.manual_seed(seed)
    n = train.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(n + 1, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128),
                              torch.nn.SiLU(), torch.nn.Linear(128, n))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    y = torch.tensor(train, dtype=torch.float32)

    def denoise(x, sigma):
        total = sigma**2 + SIGMA_DATA**2
        c_skip, c_out, c_in = SIGMA_DATA**2 / total, sigma * SIGMA_DATA / total.sqrt(), 1 / total.sqrt()
        return c_skip * x + c_out * net(torch.cat([c_in * x, sigma.log() / 4], dim=1))

    for _ in range(steps):
        sigma = (-1.2 + 1.2 * torch.randn(len(y), 1)).exp()
        x = y + sigma * torch.randn_like(y)
        weight = (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2
        loss = (weight * (denoise(x, sigma) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    @torch.no_grad()
    def model(x, sigma):
        x = torch.as_tensor(x, dtype=torch.float32)
        return denoise(x, torch.full((len(x), 1), float(sigma))).numpy()

    return model


def train_model(train, backend):
    if backend == "torch":
        return train_torch(train)
    return train_numpy(train)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="training-set size N")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--backend", choices=["auto", "torch", "numpy"], default="auto")
    parser.add_argument("--out", default=None, help="where to draw the figure (PNG), if matplotlib is installed")
    args = parser.parse_args()

    backend = args.backend
    if backend == "auto":
        try:
            import torch  # noqa: F401
            backend = "torch"
        except ImportError:
            backend = "numpy"
    distribution = dr.molrg(8, ranks=[2, 2], seed=0)
    train = distribution.sample(args.n)
    model = train_model(train, backend)
    memorizer = dr.denoiser("empirical", train)

    seeds = range(args.samples)
    ours = dr.sample(model, seeds=seeds, shape=train.shape[1], dtype="float64")
    exact = dr.sample(memorizer, seeds=seeds)
    print(f"model: {backend}, N = {args.n}, {args.samples} samples from the same noise")
    print(" ", dr.reproducibility(ours, exact))
    for name, samples in (("model", ours), ("memorizer", exact)):
        print(f"  {name}: {dr.generalization(samples, train)}; {dr.memorization_ratio(samples, train)}")
    gap = dr.denoiser_gap(model, memorizer, [0.1, 1.0, 10.0], distribution.fresh(256))
    print("  gap to the memorizer at sigma = 0.1, 1, 10:", np.round(gap, 4))

    if args.out:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no figure drawn", file=sys.stderr)
            return
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(exact[:, 0], exact[:, 1], s=30, facecolors="none", edgecolors="tab:blue", label="memorizer")
        ax.scatter(ours[:, 0], ours[:, 1], s=8, color="tab:orange", label=f"model ({backend})")
        ax.scatter(train[:, 0], train[:, 1], marker="x", color="black", label="training set")
        ax.set_title(f"Samples from the same noise, N = {args.n}")
        ax.legend()
        fig.savefig(args.out, dpi=120)
        print("figure:", args.out)


if __name__ == "__main__":
    main()

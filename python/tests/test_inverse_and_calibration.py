"""Inverse problems and the patch calibration from Python: the CLI's bits,
callables where the method allows them, and a clear error where not."""

import numpy as np
import pytest

import diffusion_regimes as dr

from test_denoisers import empirical_numpy


def test_solve_equals_the_cli(tmp_path, regimes):
    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (12, 1, 4, 4)).astype(np.float32)
    clean = train[:2]
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "clean.npy", clean)
    for solver in ("dps", "projection"):
        out = tmp_path / f"{solver}.npy"
        regimes("solve", "--denoiser", "empirical", "--train", tmp_path / "train.npy", "--measure",
                tmp_path / "clean.npy", "--operator", "inpaint-box:0,0,2,4", "--solver", solver, "--seeds", "0-2",
                "--steps", 10, "--out", out)
        x, y = dr.solve(dr.denoiser("empirical", train), clean, "inpaint-box:0,0,2,4", solver, seeds=3, steps=10)
        assert x.shape == (6, 1, 4, 4)
        np.testing.assert_array_equal(x, np.load(out), err_msg=solver)
        np.testing.assert_array_equal(y, np.load(tmp_path / f"{solver}.measurements.npy"))


def test_projection_takes_a_callable_and_dps_says_why_not():
    rng = np.random.default_rng(1)
    train = rng.standard_normal((10, 6))
    built_in = dr.solve(dr.denoiser("empirical", train), train[:2], "project:3,0", "projection", seeds=2)[0]
    by_callable = dr.solve(lambda x, s: empirical_numpy(train, x, s), train[:2], "project:3,0", "projection",
                           seeds=2)[0]
    np.testing.assert_allclose(by_callable, built_in, atol=1e-9)
    with pytest.raises(ValueError, match="projection"):
        dr.solve(lambda x, s: x, train[:2], "project:3,0", "dps", seeds=2)
    with pytest.raises(ValueError, match="solver"):
        dr.solve(dr.denoiser("empirical", train), train[:2], "project:3,0", "admm")


def test_calibration_recovers_the_patch_size_of_a_patch_model():
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, (8, 1, 6, 6))
    model = dr.denoiser("local", images, k=3)
    steps = dr.calibrate_patches(model, "local", images, sizes=[1, 3, 5], seeds=4, steps=8)
    assert len(steps) >= 8 and all(k == 3 for _, k, _ in steps)
    # The same model as a callable calibrates the same.
    again = dr.calibrate_patches(lambda x, s: model.denoise(x, s), "local", images, sizes=[1, 3, 5], seeds=4,
                                 steps=8)
    assert [k for _, k, _ in again] == [k for _, k, _ in steps]

"""Data loaders, subsets, distributions, and experiments run from Python."""

import json
import os

import numpy as np
import pytest

import diffusion_regimes as dr


def test_distributions_are_seeded_and_nested():
    a, b = dr.molrg(10, ranks=[2, 3], seed=5), dr.molrg(10, ranks=[2, 3], seed=5)
    np.testing.assert_array_equal(a.sample(20), b.sample(20))
    np.testing.assert_array_equal(a.sample(20)[:7], a.sample(7))
    assert a.dim == 10 and len(a.labels(20)) == 20
    g = dr.gmm(6, 3, std=0.05, seed=1)
    assert g.sample(5).shape == (5, 6)
    with pytest.raises(ValueError, match="distribution spec"):
        dr.synthetic({"kind": "cube"})


def test_subsets_are_nested_and_disjoint():
    small, large = dr.nested_subset(100, 10, seed=2), dr.nested_subset(100, 40, seed=2)
    np.testing.assert_array_equal(large[:10], small)
    p0, p1 = dr.disjoint_subset(100, 20, 0, seed=2), dr.disjoint_subset(100, 20, 1, seed=2)
    assert not set(p0) & set(p1)
    x = np.arange(100.0)[:, None]
    np.testing.assert_array_equal(dr.training_set(x, 10, seed=2)[:, 0], small)


def test_images_load_as_the_cli_imports_them(tmp_path, regimes):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "raw.npy", images)
    pixels, labels = dr.load_images(tmp_path / "raw.npy", size=4)
    assert pixels.shape == (6, 1, 4, 4) and pixels.dtype == np.float32 and labels is None
    regimes("data", "import", tmp_path / "raw.npy", "--format", "npy", "--size", "4", "--out", tmp_path / "imported")
    np.testing.assert_array_equal(pixels, np.load(tmp_path / "imported" / "data.npy"))
    np.testing.assert_array_equal(dr.load_images(tmp_path / "imported")[0], pixels)


def test_experiments_are_listed_and_one_runs_to_its_report(tmp_path):
    names = [name for name, _ in dr.experiments()]
    assert "regimes_sweep" in names and "frameworks" in names
    config = {
        "name": "tiny",
        "ns": [2, 4],
        "subset_seed": 0,
        "seeds": [0],
        "data": {"synthetic": {"kind": "molrg", "ambient": 6, "ranks": [2, 2], "floor": 0.0}, "seed": 0},
        "models": [{"kind": "mlp", "width": 16, "depth": 1}],
        "train": {"steps": 20, "batch": 8, "lr": 1e-3, "warmup": 2},
        "sampling": {"samples": 8, "seed": 0, "schedule": {"steps": 6, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0}},
        "metrics": {"gap_sigmas": [0.5], "gap_points": 16, "resamples": 50},
    }
    report = dr.run_experiment("regimes_sweep", config, out=tmp_path / "cells", figures=tmp_path / "figures", jobs=1)
    with open(tmp_path / "figures" / "results.json") as f:
        assert report == json.load(f)
    # A rerun resumes: every cell is finished, the report is the same.
    again = dr.run_experiment("regimes_sweep", config, out=tmp_path / "cells", figures=tmp_path / "figures", jobs=1)
    assert again == report
    # Its two MLP cells trained as one network: the same samples, bit for bit.
    dr.run_experiment("regimes_sweep", config, out=tmp_path / "together", figures=tmp_path / "f2", jobs=1, together=2)
    for n in ["n00002", "n00004"]:
        samples = [root / "cells" / n / "mlp-w16-d1-s0" / "samples.npy" for root in [tmp_path / "cells", tmp_path / "together"]]
        with open(samples[0], "rb") as alone, open(samples[1], "rb") as together:
            assert alone.read() == together.read()
    assert os.path.exists(tmp_path / "figures" / "b_generalization.png")

"""Scores on arrays equal `regimes score` on the same rows; gaps, nearest
neighbours and Jacobian ranks against direct computations."""

import json

import numpy as np
import pytest

import diffusion_regimes as dr


def test_scores_equal_the_cli_on_npz_features(tmp_path, regimes):
    rng = np.random.default_rng(0)
    a, train = rng.standard_normal((40, 8)), rng.standard_normal((30, 8))
    b = a + 0.5 * rng.standard_normal((40, 8))
    np.savez(tmp_path / "f.npz", a=a, b=b, train=train)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "t.npy", train)
    rp = json.loads(regimes("score", "rp", "--a", tmp_path / "a.npy", "--b", tmp_path / "b.npy",
                            "--features-a", f"{tmp_path / 'f.npz'}:a", "--features-b", f"{tmp_path / 'f.npz'}:b",
                            "--threshold", "0.8").stdout)
    mine = dr.reproducibility(a, b, threshold=0.8)
    assert (mine.value, list(mine.ci95), mine.m) == (rp["value"], rp["ci95"], rp["m"])
    gl = json.loads(regimes("score", "gl", "--samples", tmp_path / "a.npy", "--train", tmp_path / "t.npy",
                            "--similarity", "centered-cosine", "--threshold", "0.5").stdout)[0]
    mine = dr.generalization(a, train, "centered-cosine", 0.5)
    assert (mine.value, list(mine.ci95)) == (gl["value"], gl["ci95"])
    ratio = json.loads(regimes("score", "ratio", "--samples", tmp_path / "a.npy", "--train", tmp_path / "t.npy").stdout)
    mine = dr.memorization_ratio(a, train)
    assert (mine.value, list(mine.ci95)) == (ratio["value"], ratio["ci95"])


def test_scores_against_direct_counts():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 6))
    b = a.copy()
    b[:20] = rng.standard_normal((20, 6))
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    rp = dr.reproducibility(a, b, threshold=0.8)
    assert rp.value == pytest.approx(np.mean(cos > 0.8)) and rp.ci95[0] <= rp.value <= rp.ci95[1]
    train = rng.standard_normal((25, 6))
    samples = np.concatenate([train[:10] + 1e-3, rng.standard_normal((10, 6))])
    idx, dist = dr.nearest(samples, train)
    d = np.linalg.norm(samples[:, None] - train[None], axis=-1)
    np.testing.assert_array_equal(idx, np.argsort(d, axis=1)[:, :2])
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :2], rtol=1e-9)
    assert dr.memorization_ratio(samples, train).value == pytest.approx(np.mean(dist[:, 0] / dist[:, 1] < 1 / 3))
    gl = dr.generalization(samples, train)
    assert gl.complement("memorization").value == pytest.approx(1 - gl.value)


def test_gap_of_a_denoiser_to_itself_is_zero_and_to_the_truth_falls_with_n():
    dist = dr.molrg(10, ranks=[2, 2])
    truth = dr.denoiser("truth", dist)
    points = dist.fresh(200)
    assert dr.denoiser_gap(truth, truth, 0.5, points) == 0.0
    small, large = (dr.denoiser("empirical", dist.sample(n)) for n in (4, 4000))
    gaps = [dr.denoiser_gap(d, truth, [0.3, 1.0], points) for d in (small, large)]
    assert gaps[0].shape == (2,) and (gaps[1] < gaps[0]).all()
    # A callable is scored like the denoiser it wraps.
    assert dr.denoiser_gap(lambda x, s: small.denoise(x, s), truth, 0.3, points) == pytest.approx(gaps[0][0])


def test_jacobian_rank_of_the_truth_is_the_subspace_dimension_at_small_sigma():
    dist = dr.molrg(12, ranks=[3, 3])
    ranks, values = dr.jacobian_rank(dr.denoiser("truth", dist), dist.fresh(4), 0.01)
    assert list(ranks) == [3, 3, 3, 3] and values.shape == (4, 12)


def test_bad_scoring_input():
    with pytest.raises(ValueError, match="paired"):
        dr.reproducibility(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="values per row"):
        dr.generalization(np.zeros((3, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="similarity"):
        dr.reproducibility(np.ones((3, 2)), np.ones((3, 2)), similarity="dot")
    with pytest.raises(ValueError, match="non-finite"):
        dr.memorization_ratio(np.full((3, 2), np.nan), np.zeros((4, 2)))

"""Noise and samplers: bit-equal to the CLI on the same seeds, callables
sampled like built-in denoisers, observers, native samplers."""

import numpy as np
import pytest

import diffusion_regimes as dr

from test_denoisers import empirical_numpy


def test_samples_equal_the_cli_bit_for_bit(tmp_path, regimes):
    dist = dr.molrg(10, ranks=[2, 2], seed=1)
    train = dist.sample(24).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    for sampler in ("heun", "euler", "edm-stochastic", "ancestral"):
        out = tmp_path / f"{sampler}.npy"
        regimes("sample", "--denoiser", f"empirical:{tmp_path / 'train.npy'}", "--seed", 3, "--seeds", "0-9,20",
                "--sampler", sampler, "--steps", 12, "--out", out)
        got = dr.sample(dr.denoiser("empirical", train), seeds=[*range(10), 20], seed=3, sampler=sampler, steps=12)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.load(out), err_msg=sampler)


def test_initial_noise_is_the_clis_starting_noise(tmp_path, regimes):
    z = dr.initial_noise(7, [0, 5, 9], (2, 3), dtype="float64")
    assert z.shape == (3, 2, 3) and z.dtype == np.float64
    np.testing.assert_array_equal(z[1], dr.initial_noise(7, [5], (2, 3), dtype="float64")[0])
    # Sampling from the returned noise is sampling from the seeds.
    d = dr.denoiser("empirical", np.random.default_rng(0).standard_normal((8, 6)))
    np.testing.assert_array_equal(
        dr.sample(d, noise=dr.initial_noise(2, range(4), (6,), "float64"), seed=2),
        dr.sample(d, seeds=range(4), seed=2),
    )


def test_a_numpy_callable_samples_like_the_same_closed_form_built_in():
    train = np.random.default_rng(4).standard_normal((16, 5))
    built_in = dr.sample(dr.denoiser("empirical", train), seeds=20)
    calls = []

    def memorizer(x, sigma):
        calls.append(x.shape)
        return empirical_numpy(train, x, sigma)

    by_callable = dr.sample(memorizer, seeds=20, shape=5, dtype="float64")
    assert len(calls) == 2 * 18 - 1 and calls[0] == (20, 5)
    # Two independent computations of one formula: equal to rounding.
    np.testing.assert_allclose(by_callable, built_in, atol=1e-9)


def test_observer_sees_every_step_and_can_stop_sampling():
    d = dr.denoiser("empirical", np.random.default_rng(5).standard_normal((8, 3)))
    seen = []
    dr.sample(d, seeds=4, sampler="euler", steps=6, observer=lambda i, s, x, dx: seen.append((i, s, x.shape)))
    assert [i for i, _, _ in seen] == list(range(6)) and seen[0][1] == pytest.approx(80.0) and seen[0][2] == (4, 3)

    def stop(i, s, x, dx):
        if i == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        dr.sample(d, seeds=4, observer=stop)


def test_callable_errors_are_raised_as_themselves():
    def broken(x, sigma):
        raise ZeroDivisionError("inside the model")

    with pytest.raises(ZeroDivisionError, match="inside the model"):
        dr.sample(broken, seeds=2, shape=3)
    with pytest.raises(ValueError, match="shape"):
        dr.sample(lambda x, s: x[:, :2], seeds=2, shape=3)


def test_native_samplers_of_every_framework_start_from_the_same_noise():
    d = dr.denoiser("empirical", np.random.default_rng(6).standard_normal((6, 4)))
    for framework in dr.frameworks():
        x = dr.sample(d, seeds=3, sampler="native", framework=framework, steps=10)
        assert x.shape == (3, 4) and np.isfinite(x).all(), framework
    with pytest.raises(ValueError, match="framework"):
        dr.sample(d, seeds=3, sampler="native")


def test_bad_sampling_requests_are_value_errors():
    d = dr.denoiser("empirical", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="rk4"):
        dr.sample(d, seeds=2, sampler="rk4")
    with pytest.raises(ValueError, match="exactly one"):
        dr.sample(d)
    with pytest.raises(ValueError, match="steps"):
        dr.sample(d, seeds=2, steps=1)
    with pytest.raises(ValueError, match="noise"):
        dr.sample(d, noise=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="shape="):
        dr.sample(lambda x, s: x, seeds=2)

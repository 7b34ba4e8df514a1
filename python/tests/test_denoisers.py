"""Denoisers built from Python against independent numpy computations and
against the crate's own results on the same input."""

import numpy as np
import pytest

import diffusion_regimes as dr


def empirical_numpy(train, x, sigma):
    """The memorizing denoiser (THEORY §4), written independently in numpy:
    softmax over -|x - y_i|^2 / (2 sigma^2) of the training points."""
    d2 = ((x[:, None, :] - train[None, :, :]) ** 2).sum(-1)
    logits = -d2 / (2 * sigma**2)
    w = np.exp(logits - logits.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return w @ train


def test_empirical_matches_numpy_in_f64_to_1e12():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((50, 12))
    x = rng.standard_normal((7, 12)) * 2
    d = dr.denoiser("empirical", train)
    assert d.dtype == "float64" and d.shape == [12]
    for sigma in (0.05, 0.5, 5.0):
        got = d.denoise(x, sigma)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, empirical_numpy(train, x, sigma), rtol=0, atol=1e-12)
        score = d.score(x, sigma)
        np.testing.assert_allclose(score, (empirical_numpy(train, x, sigma) - x) / sigma**2, rtol=1e-10, atol=1e-10)


def test_f32_stays_f32_and_strided_and_fortran_input_is_accepted():
    rng = np.random.default_rng(1)
    train = rng.standard_normal((20, 6)).astype(np.float32)
    d = dr.denoiser("empirical", train)
    x = np.asfortranarray(rng.standard_normal((5, 6)).astype(np.float32))
    strided = np.ascontiguousarray(rng.standard_normal((5, 12)).astype(np.float32))[:, ::2]
    assert d.denoise(x, 0.3).dtype == np.float32
    np.testing.assert_array_equal(d.denoise(x, 0.3), d.denoise(np.ascontiguousarray(x), 0.3))
    np.testing.assert_array_equal(d.denoise(strided, 0.3), d.denoise(strided.copy(), 0.3))


def test_images_keep_their_shape_and_one_point_gives_its_jacobian():
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, (16, 1, 4, 4))
    d = dr.denoiser("empirical", images)
    x = rng.standard_normal((3, 1, 4, 4))
    out = d.denoise(x, 0.4)
    assert out.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(out.reshape(3, 16), empirical_numpy(images.reshape(16, 16), x.reshape(3, 16), 0.4),
                               atol=1e-12)
    j = d.jacobian(x[0], 0.4)
    assert j.shape == (16, 16)
    # Finite differences of the numpy denoiser, independent of the crate's closed form.
    h = 1e-6
    point = x[0].reshape(16)
    fd = np.stack([(empirical_numpy(images.reshape(16, 16), (point + h * e)[None], 0.4)
                    - empirical_numpy(images.reshape(16, 16), (point - h * e)[None], 0.4))[0] / (2 * h)
                   for e in np.eye(16)], axis=1)
    np.testing.assert_allclose(j, fd, atol=1e-6)


def test_truth_of_a_distribution_matches_its_saved_folder_through_the_cli(tmp_path, regimes):
    dist = dr.molrg(12, ranks=[3, 3], seed=4)
    dist.save(tmp_path / "dist")
    x = dist.fresh(5)
    np.save(tmp_path / "x.npy", x)
    regimes("denoise", "--denoiser", "truth", "--distribution", tmp_path / "dist", "--input", tmp_path / "x.npy",
            "--sigma", "0.7", "--dtype", "f64", "--out", tmp_path / "d.npy")
    want = np.load(tmp_path / "d.npy")
    np.testing.assert_array_equal(dr.denoiser("truth", dist).denoise(x, 0.7), want)
    np.testing.assert_array_equal(dr.denoiser("truth", dr.load_distribution(tmp_path / "dist")).denoise(x, 0.7), want)


def test_every_kind_of_the_registry_builds(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, (12, 1, 6, 6))
    np.save(tmp_path / "images.npy", images)
    dist = dr.molrg(36, ranks=[2, 2])
    built = {
        "empirical": dr.denoiser("empirical", images),
        "gaussian": dr.denoiser("gaussian", images),
        "kde": dr.denoiser("kde", images, bandwidth=0.1),
        "local": dr.denoiser("local", images, k=3),
        "els": dr.denoiser("els", images, k=3),
        "els-boundary": dr.denoiser("els-boundary", images, k=3),
        "window-mean": dr.denoiser("window-mean", images, k=3),
        "truth": dr.denoiser("truth", dist),
        "spec": dr.denoiser(f"els:{tmp_path / 'images.npy'}:3", dtype="float64"),
    }
    run = dr.train(images, 4, tmp_path / "run", steps=5, width=16, depth=1, batch=4, progress=False)
    built["model"] = run.denoiser()
    built["model-raw"] = run.denoiser("model")
    kinds = {k for k, _, _ in dr.denoiser_kinds()}
    assert kinds <= set(built), kinds - set(built)
    x = rng.standard_normal((2, 1, 6, 6))
    for name, d in built.items():
        out = d.denoise(x, 0.5)
        assert out.shape == x.shape and np.isfinite(out).all(), name
    # The spec string and the array build the same ELS denoiser.
    np.testing.assert_allclose(built["spec"].denoise(x, 0.5), built["els"].denoise(x, 0.5), atol=1e-12)


def test_class_conditional_and_guided_forms():
    rng = np.random.default_rng(5)
    train = rng.standard_normal((30, 4))
    labels = np.arange(30) % 3
    d = dr.denoiser("empirical", train, labels=labels, class_=1)
    x = rng.standard_normal((4, 4))
    np.testing.assert_allclose(d.denoise(x, 0.3), empirical_numpy(train[labels == 1], x, 0.3), atol=1e-12)
    guided = dr.denoiser("empirical", train, labels=labels, class_=1, guidance=2.0)
    want = 3 * empirical_numpy(train[labels == 1], x, 0.3) - 2 * empirical_numpy(train, x, 0.3)
    np.testing.assert_allclose(guided.denoise(x, 0.3), want, atol=1e-11)
    dist = dr.molrg(8, ranks=[2, 2])
    assert dr.denoiser("truth", dist, class_=0).denoise(x[:, :4].repeat(2, 1), 0.5).shape == (4, 8)

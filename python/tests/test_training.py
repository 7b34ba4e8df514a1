"""Training from Python: the same run as `regimes train`, a denoiser that
samples like `regimes sample --denoiser model:RUN`, Ctrl-C that stops
training and sampling and leaves what a rerun resumes."""

import os
import signal
import time

import numpy as np
import pytest

import diffusion_regimes as dr

OPTIONS = dict(steps=40, width=32, depth=2, batch=8, lr=2e-3, warmup=5, checkpoint_every=10, seed=3)


def checkpoint(run, step):
    with open(os.path.join(run, "checkpoints", f"step-{step:08d}.safetensors"), "rb") as f:
        return f.read()


def test_train_equals_the_cli_and_its_model_samples_like_the_cli(tmp_path, regimes):
    data = dr.molrg(8, ranks=[2, 2]).sample(64).astype(np.float32)
    np.save(tmp_path / "data.npy", data)
    run = dr.train(data, 16, tmp_path / "py", progress=False, **OPTIONS)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()]
    regimes("train", "--data", tmp_path / "data.npy", "--n", 16, "--out", tmp_path / "cli", *flags)
    assert run.step == 40 and run.config["n"] == 16
    assert checkpoint(run.path, 40) == checkpoint(tmp_path / "cli", 40)
    regimes("sample", "--denoiser", f"model:{tmp_path / 'cli'}", "--seeds", "0-7", "--out", tmp_path / "s.npy")
    np.testing.assert_array_equal(dr.sample(run.denoiser(), seeds=8), np.load(tmp_path / "s.npy"))
    assert dr.load_run(run.path).denoiser().framework == "edm"


def test_metrics_hold_the_heldout_loss_and_it_is_the_cli_one(tmp_path, regimes):
    data = dr.molrg(8, ranks=[2, 2]).sample(64).astype(np.float32)
    np.save(tmp_path / "data.npy", data)
    options = dict(OPTIONS, eval_every=20, eval_points=32)
    run = dr.train(data, 16, tmp_path / "py", progress=False, **options)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    regimes("train", "--data", tmp_path / "data.npy", "--n", 16, "--out", tmp_path / "cli", *flags)
    m = run.metrics()
    evaluated = ~np.isnan(m["heldout_loss"])
    np.testing.assert_array_equal(m["step"][evaluated], [20, 40])
    assert np.all(m["train_loss"][evaluated] > 0)
    cli = dr.load_run(tmp_path / "cli").metrics()
    np.testing.assert_array_equal(cli["heldout_loss"][evaluated], m["heldout_loss"][evaluated])
    # Held-out rows given as an array replace the data's own: given the
    # training set itself, in its order, both losses are one computation.
    given = dr.training_set(data, 16)
    other = dr.train(data, 16, tmp_path / "given", heldout=given, progress=False, **options)
    g = other.metrics()
    np.testing.assert_array_equal(g["heldout_loss"][evaluated], g["train_loss"][evaluated])


def test_the_empirical_target_is_an_option_recorded_in_the_config(tmp_path):
    data = dr.molrg(8, ranks=[2, 2]).sample(64).astype(np.float32)
    run = dr.train(data, 8, tmp_path / "run", target="empirical", progress=False, **OPTIONS)
    assert run.config["target"] == "empirical"
    with pytest.raises(ValueError, match="target"):
        dr.train(data, 8, tmp_path / "bad", target="denoiser", progress=False, **OPTIONS)


def test_fine_tuning_equals_the_cli_and_keeps_the_parents_network(tmp_path, regimes):
    source = dr.molrg(8, ranks=[2, 2], seed=1).sample(64).astype(np.float32)
    target = dr.molrg(8, ranks=[2, 2], seed=2).sample(64).astype(np.float32)
    np.save(tmp_path / "target.npy", target)
    parent = dr.train(source, 32, tmp_path / "parent", progress=False, **OPTIONS)
    child = dr.train(target, 4, tmp_path / "py", init=tmp_path / "parent", steps=20, seed=9,
                     checkpoint_every=10, progress=False)
    regimes("train", "--data", tmp_path / "target.npy", "--n", 4, "--init", tmp_path / "parent",
            "--steps", 20, "--seed", 9, "--checkpoint-every", 10, "--out", tmp_path / "cli")
    assert checkpoint(child.path, 20) == checkpoint(tmp_path / "cli", 20)
    assert child.config["arch"] == parent.config["arch"] and child.config["init"]["step"] == 40
    with pytest.raises(ValueError, match="width.*init"):
        dr.train(target, 4, tmp_path / "bad", init=parent.path, width=64, progress=False)


def test_a_local_cnn_trains_on_images_with_its_padding_recorded(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, size=(12, 1, 6, 6)).astype(np.float32)
    run = dr.train(images, 8, tmp_path / "cnn", arch="cnn", width=8, depth=1, padding="circular",
                   steps=3, batch=4, progress=False)
    assert run.config["arch"] == {"kind": "cnn", "width": 8, "depth": 1, "padding": "circular"}
    samples = dr.sample(run.denoiser(), seeds=2)
    assert samples.shape[0] == 2 and samples[0].size == 36 and np.isfinite(samples).all()
    with pytest.raises(ValueError, match="padding"):
        dr.train(images, 8, tmp_path / "bad", arch="cnn", padding="reflect", progress=False)


def test_unknown_or_bad_options_are_value_errors(tmp_path):
    data = np.zeros((8, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="stepz"):
        dr.train(data, 4, tmp_path / "a", stepz=10, progress=False)
    with pytest.raises(ValueError, match="lr"):
        dr.train(data, 4, tmp_path / "b", lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="architecture"):
        dr.train(data, 4, tmp_path / "c", arch="resnet", progress=False)
    with pytest.raises(ValueError, match="10 examples|examples"):
        dr.train(data, 10, tmp_path / "d", progress=False)
    with pytest.raises(FileNotFoundError):
        dr.load_run(tmp_path / "none")


def interrupt_at(step_to_stop):
    """A progress callback that presses Ctrl-C (SIGINT to this process) once
    and then takes as long as a person would to look up: the calling thread
    sees signals every 20 ms, and a tiny network trains dozens of steps in
    that time, so without the pause the step it stops at would be a race."""
    sent = []

    def progress(step, steps, loss):
        if step >= step_to_stop and not sent:
            sent.append(step)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)

    return progress, sent


def test_ctrl_c_stops_training_and_the_same_call_resumes_to_the_same_bits(tmp_path):
    data = dr.molrg(8, ranks=[2, 2]).sample(64).astype(np.float32)
    options = dict(OPTIONS, steps=400, checkpoint_every=50)
    whole = dr.train(data, 16, tmp_path / "whole", progress=False, **options)
    progress, sent = interrupt_at(120)
    with pytest.raises(KeyboardInterrupt):
        dr.train(data, 16, tmp_path / "stopped", progress=progress, **options)
    stopped = dr.load_run(tmp_path / "stopped")
    assert sent and stopped.step == 100, "the last checkpoint before the interrupt stands"
    resumed = dr.train(data, 16, tmp_path / "stopped", progress=False, **options)
    assert resumed.step == 400
    assert checkpoint(whole.path, 400) == checkpoint(resumed.path, 400)


def test_ctrl_c_stops_sampling_at_the_next_step():
    calls = []

    def slow(x, sigma):
        calls.append(sigma)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.005)
        return x / (1 + sigma**2)

    with pytest.raises(KeyboardInterrupt):
        dr.sample(slow, seeds=4, shape=3, steps=200)
    # The signal is seen within 20 ms, the sampler stops at its next
    # evaluation: far fewer than the 399 evaluations of the whole run.
    assert 3 <= len(calls) < 100, len(calls)

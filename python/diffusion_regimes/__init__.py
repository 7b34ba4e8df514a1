"""diffusion_regimes: memorization and generalization regimes of diffusion models.

Exact denoisers (the memorizing one of a training set, Gaussian, mixtures,
patch closed forms, KDE), the crate's samplers from per-sample seeded noise,
the paper's scores with bootstrap intervals, training and experiments, all on
numpy arrays. Any callable ``f(x, sigma) -> array`` (a lambda around a torch
model) is a denoiser wherever one is accepted.

    import numpy as np, diffusion_regimes as dr
    train = dr.molrg(32, ranks=[6, 6]).sample(64)
    memorizer = dr.denoiser("empirical", train)
    a = dr.sample(memorizer, seeds=range(100))
    b = dr.sample(lambda x, s: my_model(x, s), seeds=range(100), shape=(32,))
    print(dr.reproducibility(a, b), dr.generalization(b, train))

Formulas: docs/THEORY.md of the repository; the user guide: docs/guide/.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import Denoiser, Distribution

__all__ = [
    "Denoiser",
    "Distribution",
    "Run",
    "Score",
    "denoiser",
    "denoiser_kinds",
    "initial_noise",
    "sample",
    "samplers",
    "frameworks",
    "reproducibility",
    "generalization",
    "memorization_ratio",
    "nearest",
    "denoiser_gap",
    "jacobian_rank",
    "molrg",
    "gmm",
    "synthetic",
    "load_distribution",
    "load_images",
    "nested_subset",
    "disjoint_subset",
    "training_set",
    "solve",
    "calibrate_patches",
    "train",
    "load_run",
    "experiments",
    "run_experiment",
]

ArrayLike = Any
DenoiserLike = Union[Denoiser, Callable[[np.ndarray, float], np.ndarray]]
PathLike = Union[str, "os.PathLike[str]"]


def _array(x: ArrayLike) -> np.ndarray:
    """A numpy array of x, float32 and float64 kept; other numbers become float64."""
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64) and a.dtype.kind in "iub":
        a = a.astype(np.float64)
    return a


# ---------------------------------------------------------------- denoisers

_PARAM_ALIASES = ("param", "k", "patch", "bandwidth")


def denoiser(spec_or_kind: str, *sources: Any, **params: Any) -> Denoiser:
    """Builds a denoiser of the crate's registry.

    ``spec_or_kind`` is a kind (``empirical``, ``gaussian``, ``kde``,
    ``local``, ``els``, ``els-boundary``, ``window-mean``, ``truth``,
    ``model``, ``model-raw``; see :func:`denoiser_kinds`) built from the one
    source given: training examples as an array ``[N, n]`` or images
    ``[N, C, H, W]`` (computing in the array's dtype: float64 stays
    float64), a :class:`Distribution`, or a path (a training ``.npy``, a
    distribution folder, a run folder). Or a whole spec such as
    ``"empirical:train.npy"`` or ``"els:images.npy:5"`` (``dtype=`` sets its
    precision, float32 by default).

    Keywords: the kind's parameter as ``k=`` / ``patch=`` (patch size) or
    ``bandwidth=`` (KDE) or ``param=``; ``class_=c`` for the class-conditional
    form (``labels=`` one per training example for ``empirical``) and
    ``guidance=w`` for classifier-free guidance.
    """
    if len(sources) > 1:
        raise ValueError(f"denoiser: give one source (examples, distribution or path), got {len(sources)}")
    given = [params.pop(name) for name in _PARAM_ALIASES if name in params]
    if len(given) > 1:
        raise ValueError("denoiser: give the kind's parameter once (param=, k=, patch= or bandwidth=)")
    param = None if not given else str(given[0])
    dtype = params.pop("dtype", None)
    labels = params.pop("labels", None)
    class_ = params.pop("class_", params.pop("cls", None))
    guidance = float(params.pop("guidance", 0.0))
    if params:
        raise ValueError(f"denoiser: unknown keyword(s) {sorted(params)}")
    source = sources[0] if sources else None
    if source is not None and not isinstance(source, (Distribution, str, os.PathLike)):
        source = _array(source)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if labels is not None:
        labels = [int(v) for v in np.asarray(labels).ravel()]
    return _native.denoiser(
        spec_or_kind,
        source,
        param=param,
        dtype=None if dtype is None else np.dtype(dtype).name,
        labels=labels,
        class_=class_,
        guidance=guidance,
    )


def denoiser_kinds() -> list:
    """Every kind of the registry: (name, what it is built from, its parameter or None)."""
    return _native.denoiser_kinds()


# ----------------------------------------------------------------- sampling


def initial_noise(seed: int, indices: Union[int, Iterable[int]], shape: Sequence[int], dtype="float32") -> np.ndarray:
    """The crate's standard-normal noise z_j for j in ``indices`` of run ``seed``,
    ``[len(indices), *shape]``: what ``regimes sample --seed S --seeds ...``
    starts from (x_0 = sigma_max z_j). Row j depends only on (seed, j), so a
    PyTorch sampler started from it meets the crate's samples."""
    return _native.initial_noise(int(seed), _indices(indices), [int(s) for s in _shape(shape)], np.dtype(dtype).name)


def _indices(seeds: Union[int, Iterable[int]]) -> list:
    if isinstance(seeds, (int, np.integer)):
        return list(range(int(seeds)))
    return [int(j) for j in seeds]


def _shape(shape: Union[int, Sequence[int]]) -> Tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def samplers() -> list:
    """The names ``sample(sampler=...)`` takes."""
    return _native.samplers()


def frameworks() -> list:
    """The training frameworks (``train(framework=...)``, ``sample(framework=...)``)."""
    return _native.frameworks()


def sample(
    denoiser: DenoiserLike,
    seeds: Union[None, int, Iterable[int]] = None,
    noise: Optional[ArrayLike] = None,
    *,
    seed: int = 0,
    shape: Union[None, int, Sequence[int]] = None,
    dtype=None,
    sampler: str = "heun",
    steps: int = 18,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    framework: Optional[str] = None,
    observer: Optional[Callable[[int, float, np.ndarray, np.ndarray], None]] = None,
    progress: bool = False,
) -> np.ndarray:
    """Samples ``denoiser`` from the crate's per-sample noise.

    ``seeds``: the sample indices j (an int n means 0..n-1), each starting at
    sigma_max z_j of run ``seed``: the same bits as ``regimes sample --seed
    S --seeds ...``. Or ``noise``: your own standard-normal ``[B, ...]``.
    ``denoiser``: a :class:`Denoiser` or any callable ``f(x, sigma)`` on
    batches ``[B, *shape]`` (give ``shape=``, or ``noise=``). ``sampler``:
    one of :func:`samplers` on the EDM schedule (``steps``, ``sigma_min``,
    ``sigma_max``, ``rho``), or ``"native"``: the framework's own sampler on
    ``steps`` levels (a model's own framework, or ``framework=``).
    ``observer(index, sigma, x, denoised)`` sees every step; an exception it
    raises stops sampling. Ctrl-C stops within a step. The result has the
    denoiser's dtype (or ``dtype=``) and shape ``[B, *shape]``.
    """
    user_observer = observer
    bar = None
    if progress:
        bar = _Progress(steps, "steps")

        def observer(index, sigma, x, d):  # noqa: F811 - wraps the user's
            bar.update_to(index + 1)
            if user_observer is not None:
                user_observer(index, sigma, x, d)

    try:
        return _native.sample(
            denoiser,
            seeds=None if seeds is None else _indices(seeds),
            noise=None if noise is None else _array(noise),
            seed=int(seed),
            shape=None if shape is None else list(_shape(shape)),
            dtype=None if dtype is None else np.dtype(dtype).name,
            sampler=sampler,
            steps=int(steps),
            sigma_min=float(sigma_min),
            sigma_max=float(sigma_max),
            rho=float(rho),
            framework=framework,
            observer=observer,
        )
    finally:
        if bar is not None:
            bar.close()


# ------------------------------------------------------------------- scores


@dataclass(frozen=True)
class Score:
    """One score (THEORY §7) with its bootstrap 95% interval and the settings
    that produced it."""

    score: str
    value: float
    ci95: Tuple[float, float]
    m: int
    similarity: Optional[str]
    threshold: Optional[float]
    features: str
    resamples: int
    seed: int

    @staticmethod
    def _from(d: dict) -> "Score":
        boot = d["bootstrap"]
        return Score(
            d["score"], d["value"], tuple(d["ci95"]), d["m"], d.get("similarity"),
            d.get("threshold"), d["features"], boot["resamples"], boot["seed"],
        )

    def complement(self, name: str) -> "Score":
        """The score of the complementary indicator, 1 - value (e.g. memorization = 1 - GL)."""
        lo, hi = self.ci95
        return Score(name, 1.0 - self.value, (1.0 - hi, 1.0 - lo), self.m, self.similarity,
                     self.threshold, self.features, self.resamples, self.seed)

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        lo, hi = self.ci95
        return f"{self.score} = {self.value:.3f} [{lo:.3f}, {hi:.3f}] (M = {self.m})"


def reproducibility(a: ArrayLike, b: ArrayLike, similarity: str = "cosine", threshold: float = 0.8,
                    *, resamples: int = 1000, seed: int = 0, features: str = "arrays") -> Score:
    """RP = mean_j 1[sim(a_j, b_j) > threshold]: rows of ``a`` and ``b`` are
    two models' samples from the same noise j (raw samples or features such
    as SSCD or DINOv2 embeddings). ``similarity``: cosine, centered-cosine
    or normalized-l2 (a distance: a match is below ``threshold``)."""
    return Score._from(json.loads(_native.reproducibility(
        _array(a), _array(b), similarity, float(threshold), int(resamples), int(seed), features)))


def generalization(samples: ArrayLike, train: ArrayLike, similarity: str = "cosine", threshold: float = 0.8,
                   *, resamples: int = 1000, seed: int = 0, features: str = "arrays") -> Score:
    """GL = mean_j 1[max_i sim(x_j, y_i) <= threshold], the paper's criterion;
    ``.complement("memorization")`` is 1 - GL."""
    gl, _ = json.loads(_native.generalization(
        _array(samples), _array(train), similarity, float(threshold), int(resamples), int(seed), features))
    return Score._from(gl)


def memorization_ratio(samples: ArrayLike, train: ArrayLike, *, resamples: int = 1000, seed: int = 0,
                       features: str = "arrays") -> Score:
    """The fraction of samples whose nearest training point is closer than a
    third of the second nearest (d1/d2 < 1/3): the crate's default
    memorization criterion for raw vectors."""
    return Score._from(json.loads(_native.memorization_ratio(
        _array(samples), _array(train), int(resamples), int(seed), features)))


def nearest(samples: ArrayLike, train: ArrayLike, k: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """The k (1 or 2) nearest training rows of every sample, exact and
    Euclidean: indices ``[M, k]`` and distances ``[M, k]``."""
    if k not in (1, 2):
        raise ValueError(f"k = {k}: nearest gives the 1 or 2 nearest training rows")
    indices, distances = _native.nearest(_array(samples), _array(train))
    indices = np.asarray(indices, dtype=np.int64).reshape(-1, 2)
    distances = np.asarray(distances, dtype=np.float64).reshape(-1, 2)
    return indices[:, :k], distances[:, :k]


def denoiser_gap(d: DenoiserLike, d_ref: DenoiserLike, sigma: Union[float, Sequence[float]], points: ArrayLike,
                 *, seed: int = 0):
    """gap(sigma) = E|D(x) - D_ref(x)|^2 / E|D_ref(x)|^2 over x = y + sigma z,
    y the rows of ``points`` and z the crate's noise of ``seed``; a float for
    one sigma, an array for several."""
    scalar = np.ndim(sigma) == 0
    sigmas = [float(s) for s in np.atleast_1d(sigma)]
    gaps = _native.denoiser_gap(d, d_ref, sigmas, _array(points), int(seed))
    return gaps[0] if scalar else np.asarray(gaps)


def jacobian_rank(d: DenoiserLike, x: ArrayLike, sigma: float, fraction: float = 0.99):
    """The effective rank of dD/dx at each row of ``x`` (the fewest singular
    values holding ``fraction`` of their squared sum) and the singular values:
    ``(ranks [B], singular_values [B, n])``."""
    results = _native.jacobian_rank(d, _array(x), float(sigma), float(fraction))
    ranks = np.asarray([r for r, _ in results], dtype=np.int64)
    values = np.asarray([s for _, s in results], dtype=np.float64)
    return ranks, values


# ------------------------------------------------ inverse problems, patches


def solve(denoiser: DenoiserLike, clean: ArrayLike, operator: str, solver: str = "dps", *, zeta: float = 10.0,
          noise_y: float = 0.0, seeds: Union[int, Iterable[int]] = 8, seed: int = 0, steps: int = 18,
          sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tuple[np.ndarray, np.ndarray]:
    """Inverse problems (THEORY §11): measures ``clean`` ``[K, ...]`` with
    ``operator`` (``inpaint-box:r0,c0,h,w``, ``downsample:f``,
    ``project:m,seed``, ... as ``regimes solve --operator`` spells it) and
    reconstructs each measurement from every noise of ``seeds`` by
    ``solver``: ``"dps"`` (guidance ``zeta``; needs the denoiser's
    vector-Jacobian product, so not a Python callable) or ``"projection"``
    (range-null, DDNM). Returns (reconstructions ``[K S, ...]``, row k S + j
    from noise z_j; measurements ``[K, m]``)."""
    return _native.solve(denoiser, _array(clean), operator, solver, float(zeta), float(noise_y), _indices(seeds),
                         int(seed), int(steps), float(sigma_min), float(sigma_max), float(rho))


def calibrate_patches(model: DenoiserLike, kind: str, images: ArrayLike, sizes: Sequence[int] = (1, 3, 5, 7), *,
                      seeds: Union[int, Iterable[int]] = 8, seed: int = 0, steps: int = 18, sampler: str = "heun",
                      similarity: str = "cosine") -> list:
    """Patch-size calibration (THEORY §12): along ``model``'s own
    trajectories, the patch size of ``kind`` (local, els, els-boundary,
    window-mean) over ``images`` ``[N, C, H, W]`` whose score is most like
    the model's at each step: ``[(sigma, k, mean similarity per size)]``."""
    return _native.calibrate_patches(model, kind, _array(images), [int(k) for k in sizes], _indices(seeds),
                                     int(seed), int(steps), sampler, similarity)


# --------------------------------------------------------------------- data


def synthetic(spec: dict, seed: int = 0) -> Distribution:
    """The synthetic distribution of a spec dict, as configs write it, e.g.
    ``{"kind": "molrg", "ambient": 32, "ranks": [6, 6], "floor": 0.0}``."""
    return _native.synthetic(json.dumps(spec), int(seed))


def molrg(ambient: int, ranks: Optional[Sequence[int]] = None, *, components: int = 2, rank: int = 3,
          floor: float = 0.0, seed: int = 0) -> Distribution:
    """A mixture of low-rank Gaussians (THEORY §6): equal-weight components
    N(0, U_k U_k^T + floor I) on mutually orthogonal subspaces of dimensions
    ``ranks`` (or ``components`` of ``rank``) in R^ambient. It knows its exact
    denoiser: ``denoiser("truth", dist)``."""
    ranks = [int(rank)] * int(components) if ranks is None else [int(r) for r in ranks]
    return synthetic({"kind": "molrg", "ambient": int(ambient), "ranks": ranks, "floor": float(floor)}, seed)


def gmm(ambient: int, components: int, *, mean_scale: float = 1.0, std: float = 0.1, seed: int = 0) -> Distribution:
    """K equal-weight components N(mu_k, std^2 I), mu_k ~ N(0, mean_scale^2 I)."""
    return synthetic({"kind": "gmm", "ambient": int(ambient), "components": int(components),
                      "mean_scale": float(mean_scale), "std": float(std)}, seed)


def load_distribution(path: PathLike) -> Distribution:
    """The distribution saved by ``regimes data`` or :meth:`Distribution.save`."""
    return _native.load_distribution(os.fspath(path))


def _image_format(path: str) -> str:
    name = os.path.basename(path.rstrip("/")).lower()
    if os.path.isdir(path):
        if any(f.startswith("data_batch") for f in os.listdir(path)):
            return "cifar10"
        if os.path.exists(os.path.join(path, "data.npy")):
            return "npy"
        return "png-dir"
    for ending, fmt in ((".npy", "npy"), (".npz", "npz"), (".bin", "cifar10")):
        if name.endswith(ending):
            return fmt
    if "ubyte" in name or "idx" in name:
        return "idx"
    raise ValueError(f"{path}: cannot tell its format; give format= (npy, npz, idx, cifar10, png-dir)")


def load_images(path: PathLike, format: Optional[str] = None, *, size: Union[None, int, Sequence[int]] = None,
                grayscale: bool = False, limit: Optional[int] = None, array: Optional[str] = None,
                labels: Optional[PathLike] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Images ``[N, C, H, W]`` float32 in [-1, 1] and their labels (or None),
    read as ``regimes data import`` reads them: npy, npz, MNIST IDX, CIFAR-10
    or a folder of PNGs; ``size`` resamples by area, ``grayscale`` takes luma."""
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "data.npy")) and format is None:
        path = os.path.join(path, "data.npy")
    fmt = format or _image_format(path)
    if size is None:
        hw = None
    elif np.ndim(size) == 0:
        hw = [int(size), int(size)]
    else:
        hw = [int(s) for s in size]
    images, lab = _native.load_images(path, fmt, hw, bool(grayscale), limit, array,
                                      None if labels is None else os.fspath(labels))
    return images, None if lab is None else np.asarray(lab, dtype=np.int64)


def nested_subset(total: int, n: int, seed: int = 0) -> np.ndarray:
    """Indices of the training set of size n out of ``total`` examples: the
    first n of one seeded permutation, so sets of growing n are nested (the
    sets every sweep and ``regimes train --subset-seed`` use)."""
    return np.asarray(_native.nested_subset(int(total), int(n), int(seed)), dtype=np.int64)


def disjoint_subset(total: int, n: int, part: int, seed: int = 0) -> np.ndarray:
    """Indices of part ``part`` of disjoint training sets of size n."""
    return np.asarray(_native.disjoint_subset(int(total), int(n), int(part), int(seed)), dtype=np.int64)


def training_set(examples: ArrayLike, n: int, seed: int = 0) -> np.ndarray:
    """The training set of size n of ``examples`` (rows of :func:`nested_subset`)."""
    examples = np.asarray(examples)
    return examples[nested_subset(len(examples), n, seed)]


# ----------------------------------------------------------------- training


class Run:
    """A training run's folder: its config, step and trained denoiser."""

    def __init__(self, native: "_native.Run"):
        self._native = native

    @property
    def path(self) -> str:
        return os.fspath(self._native.path)

    @property
    def step(self) -> int:
        return self._native.step

    @property
    def config(self) -> dict:
        return json.loads(self._native.config_json)

    def denoiser(self, weights: str = "ema") -> Denoiser:
        """The network as a denoiser: EMA weights ("ema") or the optimizer's ("model")."""
        return self._native.denoiser(weights)

    def metrics(self) -> dict:
        """metrics.csv as {column: array}: the batch loss every log_every
        steps and, at each evaluation, the EMA model's losses on fixed draws
        of training and held-out rows, overall and per noise band (NaN where
        a row has none)."""
        path = os.path.join(self.path, "metrics.csv")
        with open(path) as f:
            header = f.readline().strip().split(",")
            rows = [line.rstrip("\n").split(",") for line in f if line.strip()]
        return {name: np.array([float(r[k]) if r[k] else np.nan for r in rows])
                for k, name in enumerate(header)}

    def __repr__(self) -> str:
        return f"Run({self.path!r}, step={self.step})"


def train(data: Union[ArrayLike, PathLike], n: int, out: PathLike, *, labels: Optional[ArrayLike] = None,
          heldout: Optional[ArrayLike] = None, device: str = "cpu",
          progress: Union[bool, Callable[[int, int, float], None]] = True, **options: Any) -> Run:
    """Trains a network on the first n examples of ``data`` (an array or a
    file) of one seeded permutation, into the run folder ``out``, with
    ``regimes train``'s hyperparameters and defaults as keywords (arch,
    width, depth, multipliers, no_attention, padding, framework, steps, batch,
    sampling, lr, warmup, weight_decay, clip, ema_decay, sigma_data, p_mean,
    p_std, seed, subset_seed, checkpoint_every, log_every, eval_every,
    eval_points, target, p_uncond). Every ``eval_every`` steps the EMA
    model's loss on ``eval_points`` fixed draws of training rows and of
    held-out rows (``heldout``, an array shaped like the examples; by default
    the data's rows after the training set) goes to metrics.csv
    (:meth:`Run.metrics`). ``target="empirical"`` regresses on the training
    set's memorizing denoiser instead of the clean example.
    ``init=RUN`` fine-tunes: the run starts from RUN's weights
    (``init_weights="ema"`` or ``"model"``) in RUN's network, with a fresh
    optimizer, and records RUN and a hash of those weights in its config.
    ``labels`` (one per example) make it class-conditional. ``progress``: a
    bar (True), none (False), or your ``f(step, steps, loss)`` after every
    step. A folder that holds a run is resumed to ``steps``: after Ctrl-C,
    the same call goes on from the last checkpoint to the same bits."""
    if not isinstance(data, (str, os.PathLike)):
        data = _array(data)
    else:
        data = os.fspath(data)
    if labels is not None:
        labels = [int(v) for v in np.asarray(labels).ravel()]
    if options.get("init") is not None:
        options["init"] = os.fspath(options["init"])
    bar = None
    if callable(progress):
        report = progress
    elif progress:
        bar = _Progress(int(options.get("steps", 10_000)), "steps")

        def report(step, steps, loss):
            bar.update_to(step, f"loss {loss:.4f}")
    else:
        report = None
    try:
        if heldout is not None:
            heldout = _array(heldout)
        native = _native.train(data, int(n), os.fspath(out), json.dumps(options), labels, device, report,
                               heldout)
    finally:
        if bar is not None:
            bar.close()
    return Run(native)


def load_run(path: PathLike) -> Run:
    """The run in ``path`` (written by :func:`train` or ``regimes train``)."""
    return Run(_native.load_run(os.fspath(path)))


# -------------------------------------------------------------- experiments


def experiments() -> list:
    """The registered experiments: (name, what it does)."""
    return _native.experiments()


def run_experiment(name: str, config: Union[None, dict, PathLike] = None, *, out: Optional[PathLike] = None,
                   figures: Optional[PathLike] = None, jobs: Optional[int] = None,
                   data: Optional[PathLike] = None, together: Optional[int] = None) -> Optional[dict]:
    """Runs a registered experiment with its config (a dict, a TOML path, or
    its default), cells in ``out``, figures in ``figures``, on ``jobs``
    workers, up to ``together`` MLP cells of one size trained as one network
    (the same bits; default 1): the report as nested dicts and lists (the
    content of its JSON), None while other shards are unfinished. A rerun
    resumes."""
    path = None if config is None or isinstance(config, dict) else os.fspath(config)
    text = json.dumps(config) if isinstance(config, dict) else None
    report = _native.run_experiment(
        name, path, text,
        None if out is None else os.fspath(out),
        None if figures is None else os.fspath(figures),
        jobs,
        None if data is None else os.fspath(data),
        together,
    )
    return None if report is None else json.loads(report)


# ----------------------------------------------------------------- progress


class _Progress:
    """tqdm when installed, else one line on stderr redrawn as work goes on."""

    def __init__(self, total: int, unit: str):
        self.total, self.unit, self.done = max(int(total), 1), unit, 0
        try:
            from tqdm.auto import tqdm
            self._tqdm = tqdm(total=self.total, unit=unit)
        except ImportError:
            self._tqdm = None

    def update_to(self, done: int, message: str = ""):
        if self._tqdm is not None:
            self._tqdm.update(done - self._tqdm.n)
            if message:
                self._tqdm.set_postfix_str(message, refresh=False)
        elif done * 50 // self.total != self.done * 50 // self.total or done == self.total:
            filled = done * 30 // self.total
            sys.stderr.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {done}/{self.total} {self.unit} {message}")
            sys.stderr.flush()
        self.done = done

    def close(self):
        if self._tqdm is not None:
            self._tqdm.close()
        else:
            sys.stderr.write("\n")

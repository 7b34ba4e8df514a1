#!/usr/bin/env bash
# Wall time of sampling with the empirical denoiser at the paper's CIFAR-10
# shape (N = 50,000 training points, n = 3072, f32; Euler, 18 steps, 256
# samples), the crate's `regimes sample` beside the numpy peer on the same
# training file, one after the other. Needs python3 with numpy (the peer and
# the data); the training set is seeded standard normals, written once.
# Usage: bash scripts/bench_sampling.sh [DIR]   (DIR holds the 600 MB file; default /tmp)
set -euo pipefail
dir=${1:-/tmp}
train="$dir/sampling_bench_train.npy"
cd "$(dirname "$0")/.."
[ -f "$train" ] || python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).standard_normal((50000, 3072), dtype=np.float32))" "$train"
cargo build --release --quiet --bin regimes
start=$(date +%s%N)
target/release/regimes sample --denoiser empirical --train "$train" --dtype f32 \
    --sampler euler --steps 18 --seeds 0-255 --out "$dir/sampling_bench_samples.npy" >/dev/null
end=$(date +%s%N)
echo "crate_sampling_s=$(( (end - start) / 10000000 ))e-2 (including loading the training file)"
python3 scripts/numpy_sampling_peer.py "$train" 256

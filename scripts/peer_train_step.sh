#!/usr/bin/env bash
# The peers' training steps on the five shapes of benches/train_step.rs, for
# "crate / peer" ratios from one run: run it right before or after
# `cargo bench --bench train_step` on the same machine and thread count.
#   bash scripts/peer_train_step.sh [THREADS]
# The PyTorch/JAX replicas are in scripts/peers. Needs python3 with torch
# (and jax + optax for the JAX rows); a missing framework is reported and
# skipped. The crate itself never needs Python.
set -uo pipefail
peers="$(dirname "$0")/peers"
threads="${1:-$(nproc)}"
has() { python3 -c "import $1" 2>/dev/null; }
if has torch; then
    python3 "$peers/unet_step.py" 16 1,2 1 8 32 20 "$threads" 1
    python3 "$peers/unet_step.py" 32 1,2,2 1 16 64 10 "$threads" 1
    python3 "$peers/mlp_step.py" torch 64 4 32 64 500 "$threads"
    python3 "$peers/mlp_step.py" torch 256 4 64 256 100 "$threads"
    python3 "$peers/mlp_step.py" torch 1024 4 784 256 10 "$threads"
else
    echo "python3 has no torch: PyTorch rows skipped (pip install torch)" >&2
fi
if has jax && has optax; then
    python3 "$peers/mlp_step.py" jax 64 4 32 64 500 "$threads"
    python3 "$peers/mlp_step.py" jax 256 4 64 256 100 "$threads"
    python3 "$peers/mlp_step.py" jax 1024 4 784 256 10 "$threads"
else
    echo "python3 has no jax/optax: JAX rows skipped (pip install jax optax)" >&2
fi

#!/usr/bin/env bash
# Training as a user meets it: `regimes train` (steps/s from its own
# metrics.csv, between its first and last rows, so start-up is left out)
# beside the peers' replicas of the same step (scripts/peers), run back to
# back on the same machine and thread count; prints a Markdown table.
#   bash scripts/train_end_to_end.sh [THREADS]
# REGIMES: the binary (default target/release/regimes); PYTHON: a python3
# with numpy and torch and/or jax + optax (a missing framework's rows are
# skipped).
set -euo pipefail
threads="${1:-$(nproc)}"
py="${PYTHON:-python3}"
regimes="${REGIMES:-target/release/regimes}"
peers="$(dirname "$0")/peers"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS="$threads"

# 1024 examples of N(0, 0.25), as the peers draw theirs.
"$py" - "$work" <<'EOF'
import sys, numpy as np
rng = np.random.default_rng(0)
for name, shape in [("n32", (32,)), ("n64", (64,)), ("n784", (784,)), ("img8", (1, 8, 8)), ("img16", (1, 16, 16))]:
    np.save(f"{sys.argv[1]}/{name}.npy", (0.5 * rng.standard_normal((1024,) + shape)).astype(np.float32))
EOF

# crate NAME DATA STEPS FLAGS...: the CLI's steps/s.
crate() {
    local name=$1 data=$2 steps=$3
    shift 3
    "$regimes" train --data "$work/$data.npy" --n 1024 --out "$work/$name" --steps "$steps" "$@" 2>/dev/null
    awk -F, 'NR == 2 { s0 = $1; t0 = $5 } END { printf "%.2f", ($1 - s0) / ($5 - t0) }' "$work/$name/metrics.csv"
}

# peer FRAMEWORK COMMAND...: the replica's steps/s (U-Net rows print ms/step).
peer() {
    "$py" -c "import $1" 2>/dev/null || { echo "-"; return; }
    shift
    "$py" "$@" | awk '/steps\/s/ { v = $(NF - 1) } /ms\/step/ { for (i = 1; i <= NF; i++) if ($i ~ /^ms\/step/) v = 1000 / $(i - 1) } END { printf "%.2f", v }'
}

row() {
    local model=$1 ours=$2 theirs=$3 who=$4
    local ratio="-"
    [ "$theirs" != "-" ] && ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2f", a / b }')
    echo "| $model | $ours | $theirs ($who) | $ratio |"
}

echo "| model (batch), $threads threads | regimes train steps/s | peer steps/s | crate / peer |"
echo "| --- | --- | --- | --- |"
row "U-Net base 16, 1x8x8 (32)" \
    "$(crate u16 img8 200 --arch unet --width 16 --multipliers 1,2 --batch 32)" \
    "$(peer torch "$peers/unet_step.py" 16 1,2 1 8 32 100 "$threads" 1)" PyTorch
row "U-Net base 32, 1x16x16 (64)" \
    "$(crate u32 img16 30 --arch unet --width 32 --multipliers 1,2,2 --batch 64)" \
    "$(peer torch "$peers/unet_step.py" 32 1,2,2 1 16 64 20 "$threads" 1)" PyTorch
row "MLP 64x4, n = 32 (64)" \
    "$(crate m64 n32 3000 --arch mlp --width 64 --depth 4 --batch 64)" \
    "$(peer jax "$peers/mlp_step.py" jax 64 4 32 64 3000 "$threads")" JAX
row "MLP 256x4, n = 64 (256)" \
    "$(crate m256 n64 300 --arch mlp --width 256 --depth 4 --batch 256)" \
    "$(peer jax "$peers/mlp_step.py" jax 256 4 64 256 300 "$threads")" JAX
row "MLP 1024x4, n = 784 (256)" \
    "$(crate m1024 n784 40 --arch mlp --width 1024 --depth 4 --batch 256)" \
    "$(peer jax "$peers/mlp_step.py" jax 1024 4 784 256 40 "$threads")" JAX

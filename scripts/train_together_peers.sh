#!/usr/bin/env bash
# Sweep throughput: model-steps/s of K MLPs trained by the crate (the
# `train_together` group of the train_step bench: together as one stacked
# network, a sweep's `--together K`; and alone on THREADS one-thread
# workers, a sweep's default `--jobs THREADS`) beside JAX's vmap of the same K steps and beside K single-model JAX
# processes sharing the cores (one thread each, their timed steps started
# together after every process has compiled: K x steps over the time from
# that start to the last one's end). One run, one machine; prints a
# Markdown table.
#   bash scripts/train_together_peers.sh [THREADS]
# PYTHON: a python3 with numpy, jax and optax.
set -euo pipefail
threads="${1:-$(nproc)}"
py="${PYTHON:-python3}"
peers="$(dirname "$0")/peers"
export RAYON_NUM_THREADS="$threads"

# The bench's rates, "NAME RATE" per line (criterion's middle estimate).
crate="$(cargo bench --bench train_step -- train_together 2>/dev/null | awk '
    /^train_together\// { name = $1 }
    /thrpt:/ && name != "" {
        v = $4; unit = $5
        if (unit ~ /^K/) v *= 1e3; else if (unit ~ /^M/) v *= 1e6
        print name, v
        name = ""
    }')"

# rate WIDTH K WAY: the crate's model-steps/s for that width and K, WAY
# "[0-9]" (together) or "alone".
rate() {
    echo "$crate" | awk -v p="mlp-w$1-.*-k$2-$3" '$1 ~ p { printf "%.0f", $2 }'
}

# vmap WIDTH DEPTH N BATCH STEPS K
vmap() {
    "$py" "$peers/mlp_step.py" jax "$1" "$2" "$3" "$4" "$5" "$threads" "$6" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /steps\/s/) v = $(i - 1) } END { printf "%.0f", v }'
}

# processes WIDTH DEPTH N BATCH STEPS K: K one-thread processes at once,
# timed from a common start (after about 4 s of start-up each) to the last end.
processes() {
    local out start
    out="$(mktemp -d)"
    start=$(( $(date +%s) + 10 + 4 * $6 / threads ))
    for k in $(seq "$6"); do
        START_AT=$start "$py" "$peers/mlp_step.py" jax "$1" "$2" "$3" "$4" "$5" 1 > "$out/$k" &
    done
    wait
    cat "$out"/* | awk -v start="$start" -v total="$(( $5 * $6 ))" '
        { for (i = 1; i <= NF; i++) if ($i ~ /^ended=/) { t = substr($i, 7) + 0; if (t > last) last = t } }
        END { printf "%.0f", total / (last - start) }'
    rm -rf "$out"
}

echo "| model (batch), $threads threads | K | crate together | crate alone | JAX vmap | K JAX processes | best crate / vmap | best crate / processes |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for spec in "64 4 32 64 3000 MLP 64x4, n = 32 (64)" "256 4 64 256 200 MLP 256x4, n = 64 (256)"; do
    read -r width depth n batch steps label <<< "$spec"
    for k in 1 10 30; do
        together="$(rate "$width" "$k" "[0-9]")"
        alone="$(rate "$width" "$k" alone)"
        ours=$(( together > alone ? together : alone ))
        per=$(( steps / k > 20 ? steps / k : 20 ))
        v="$(vmap "$width" "$depth" "$n" "$batch" "$per" "$k")"
        p="$(processes "$width" "$depth" "$n" "$batch" "$per" "$k")"
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
        echo "| $label | $k | $together | $alone | $v | $p | $(ratio "$ours" "$v") | $(ratio "$ours" "$p") |"
    done
done

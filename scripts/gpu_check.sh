#!/usr/bin/env bash
# The GPU check (issue 38), in two halves:
#
#   bash scripts/gpu_check.sh build   # here, no GPU needed: builds with the
#       `cuda` feature (scripts/build_cuda.sh) and packs what the GPU host
#       runs into .gpu/bin.tar.xz (ignored by git; carry .gpu): regimes_sweep,
#       the CUDA tests (tests/cuda.rs) and the train_step bench, stripped
#       (about 170 MB, 22 MB packed: under the device's 64 MiB carry limit).
#   bash scripts/gpu_check.sh run     # on the GPU host, in the repo root
#       with .gpu/: the CUDA path against the CPU (tests/cuda.rs), the
#       train_step bench with BENCH_DEVICE=cuda, and one 32x32 RGB U-Net
#       sweep cell (experiments/configs/gpu_check.toml), each under its own
#       time limit so the whole fits in 10 minutes; logs into ${OUT:-gpu_check}/.
#
# The GPU host needs the CUDA 13 runtime, cuBLAS, cuRAND and NVRTC on the
# loader path; a PyTorch cu130 environment has them (docs/guide/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
build)
    bash scripts/build_cuda.sh --bin regimes_sweep --test cuda --bench train_step
    newest() { ls -t target/cuda/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
    bin="$(mktemp -d)/bin"
    mkdir "$bin"
    cp target/cuda/release/regimes_sweep "$bin/"
    cp "$(newest cuda)" "$bin/cuda_tests"
    cp "$(newest train_step)" "$bin/train_step"
    strip "$bin"/*
    rm -rf .gpu && mkdir .gpu
    tar -C "$(dirname "$bin")" -cf - bin | xz -T0 -6 > .gpu/bin.tar.xz
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
    du -sh .gpu
    ;;
run)
    out="${OUT:-gpu_check}"
    mkdir -p "$out"
    bin=/tmp/gpu_check
    rm -rf "$bin" && mkdir -p "$bin"
    python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .gpu/bin.tar.xz "$bin"
    bin="$bin/bin"
    lib="$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))')"
    export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt"
    status=0
    # CARGO_MANIFEST_DIR: where the tests find the repo's files.
    CARGO_MANIFEST_DIR="$PWD" timeout 150 "$bin/cuda_tests" --test-threads 1 \
        > "$out/cuda_tests.log" 2>&1 || status=1
    BENCH_DEVICE=cuda timeout 240 "$bin/train_step" --bench train_step/ \
        > "$out/train_step.log" 2>&1 || status=1
    rm -rf "$out/sweep"
    /usr/bin/time -v timeout 180 "$bin/regimes_sweep" experiments/configs/gpu_check.toml \
        --device cuda --jobs 1 --out "$out/sweep" > "$out/sweep.log" 2>&1 || status=1
    cp "$out"/sweep/results.csv "$out/" 2>/dev/null || true
    rm -rf "$out/sweep"
    tail -n 3 "$out"/*.log
    exit $status
    ;;
*)
    echo "usage: bash scripts/gpu_check.sh build | run" >&2
    exit 2
    ;;
esac

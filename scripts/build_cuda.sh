#!/usr/bin/env bash
# Builds the binaries with the `cuda` feature for Hopper GPUs (H100, H200:
# compute capability 90) on a machine with no GPU and no system CUDA, from
# the CUDA 13.0 toolkit on PyPI (13.0 matches driver 580 on the GPU hosts).
#
#   bash scripts/build_cuda.sh            # -> target/cuda/release/{regimes,regimes_sweep,...}
#
# Copy target/cuda/release/<binary> to the GPU host and run it there with the
# host's CUDA 13 libraries on LD_LIBRARY_PATH (see docs/guide/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLKIT=$PWD/.cuda-toolkit
CUDA=$TOOLKIT/nvidia/cu13
if [ ! -x "$CUDA/bin/nvcc" ] || [ ! -e "$CUDA/lib/libnvrtc.so.13" ]; then
  python3 -m pip install --quiet --upgrade --target "$TOOLKIT" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.88 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-cccl==13.0.85 \
    nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
fi

# Link-time stand-ins in lib/stubs, where cudarc's build script looks: the
# unversioned library names the linker wants, and a libcuda.so.1 exporting
# every driver function cudarc declares (the GPU host's driver provides them).
STUBS=$CUDA/lib/stubs
mkdir -p "$STUBS"
for lib in cublas cublasLt curand nvrtc cudart; do
  ln -sf "$(ls "$CUDA"/lib/lib$lib.so.[0-9]* | head -1)" "$STUBS/lib$lib.so"
done
cargo fetch --quiet
CUDARC_VERSION=$(grep -A1 '^name = "cudarc"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
CUDARC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$CUDARC_VERSION" | head -1)
grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$CUDARC/src/driver/sys/mod.rs" \
  | sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/void \1(void) {}/' | sort -u > "$STUBS/cuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUBS/libcuda.so" "$STUBS/cuda_stub.c"

export PATH=$CUDA/bin:$PATH CUDA_ROOT=$CUDA CUDA_PATH=$CUDA CUDA_HOME=$CUDA
export CUDA_COMPUTE_CAP=90 CARGO_TARGET_DIR=target/cuda
cargo build --release --features cuda --bins "$@"
echo "built target/cuda/release/ with CUDA $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') for sm_90"

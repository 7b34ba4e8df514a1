#!/usr/bin/env bash
# The crate's tests (cargo test), then the Python package built from python/
# (maturin, via pip) with pytest into a virtual environment this script
# makes in target/venv, and the package's example run once. The README's
# test command then runs the package's pytest suite in that environment:
#   bash scripts/test.sh && target/venv/bin/python -m pytest python/tests
# (those tests compare against the `regimes` binary that cargo test built).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
python3 -m venv target/venv
target/venv/bin/python -m pip install --quiet --disable-pip-version-check ./python pytest
target/venv/bin/python python/examples/own_model.py --n 8 --samples 100 --out target/own_model.png

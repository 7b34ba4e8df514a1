#!/usr/bin/env bash
# Every test of the project: the crate's (cargo test), then the Python
# package's. The package is built from python/ (maturin, via pip) into a
# virtual environment this script makes in target/venv, with pytest; its
# tests compare against the `regimes` binary that cargo test built, and the
# example script runs once.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
python3 -m venv target/venv
target/venv/bin/python -m pip install --quiet --disable-pip-version-check ./python pytest
target/venv/bin/python -m pytest python/tests
target/venv/bin/python python/examples/own_model.py --n 8 --samples 100 --out target/own_model.png

#!/usr/bin/env bash
# Every test, the README's test command (`bash scripts/test.sh`): the
# crate's tests (cargo test), then the Python package built from python/
# (maturin, via pip) with pytest into a virtual environment this script
# makes in target/venv, the package's example run once, and the package's
# pytest suite (which compares against the `regimes` binary cargo test built).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
python3 -m venv target/venv
target/venv/bin/python -m pip install --quiet --disable-pip-version-check ./python pytest
target/venv/bin/python python/examples/own_model.py --n 8 --samples 100 --out target/own_model.png
target/venv/bin/python -m pytest python/tests

"""Shared fixtures: the repository root and the `regimes` binary that
`cargo test` builds (the README's test command, scripts/test.sh, runs it
before pytest)."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def regimes():
    """Runs `regimes ARGS...` and returns the completed process; the binary
    is $REGIMES_BIN or target/debug/regimes."""
    binary = os.environ.get("REGIMES_BIN", str(ROOT / "target" / "debug" / "regimes"))
    if not os.path.exists(binary):
        pytest.skip(f"{binary} is missing: run `cargo build` (or `cargo test`) first, or set REGIMES_BIN")

    def run(*args, check=True):
        done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
        if check and done.returncode != 0:
            raise AssertionError(f"regimes {' '.join(map(str, args))} failed: {done.stderr}")
        return done

    return run

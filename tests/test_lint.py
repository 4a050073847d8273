"""The code base stays `ruff check` clean (config in pyproject.toml)."""

import subprocess
import sys

import pytest

from .conftest import REPO


def test_ruff_clean():
    pytest.importorskip("ruff")
    # --no-cache: the suite writes nothing into the repository
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr

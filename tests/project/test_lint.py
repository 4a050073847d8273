"""The code base stays `ruff check` clean (config in pyproject.toml)."""

import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_ruff_clean():
    pytest.importorskip("ruff")
    # --no-cache: the suite writes nothing into the repository
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_mypy_clean(tmp_path):
    pytest.importorskip("mypy")
    # the cache goes to a temporary folder: the suite writes nothing into the repository
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"), "ingest"], cwd=REPO,
                       capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr

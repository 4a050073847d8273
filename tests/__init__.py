"""The suite writes nothing into the repository: no bytecode (here, before anything is
imported, and in the subprocesses it starts), no .pytest_cache (addopts in pyproject.toml),
no .ruff_cache (``ruff --no-cache``), no .hypothesis (an in-memory database, conftest.py)."""

import os
import sys

sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"

"""seed-ingest: follow feeds, keep the articles that resemble your seed texts."""

import sys

__version__ = "0.2.0"

# httpx imports its command-line client (click, rich, pygments: ~6 MB in every process that
# fetches) whenever those are installed, and they are (uvicorn, apprise and our progress bar bring
# them). seed-ingest never runs that client; a None entry makes the import fail as httpx expects
# when they are missing (it then defines a stub). Checked by
# tests/service/test_service.py (a service that never loads them).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

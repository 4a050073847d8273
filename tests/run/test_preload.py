"""The worker processes' fork server warms dateparser's per-locale tables once for every worker
(ingest.run.preload): that must change no extraction, only where the tables are built."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # subprocesses and whole polls: left out by -m "not slow"

PAGES = REPO.parent / "shared" / "data" / "extraction" / "trafilatura-eval" / "pages"

SCRIPT = """
import gzip, hashlib, json, sys
from pathlib import Path
from ingest.text.analysis import analyse
if sys.argv[1] == "warm":
    from ingest.run.preload import warm_dates
    warm_dates()
out, dates = hashlib.sha256(), 0
for i, path in enumerate(sorted(Path(sys.argv[2]).glob("*.html.gz"))[:int(sys.argv[3])]):
    a = analyse(gzip.decompress(path.read_bytes()), f"https://example.org/{i}", "text/html")
    if a is not None:
        out.update(repr((a.page, a.text_hash)).encode())
        dates += bool(a.page.date)
print(json.dumps({"hash": out.hexdigest(), "dates": dates, "dateparser": "dateparser" in sys.modules}))
"""


@pytest.mark.skipif(not PAGES.exists(), reason="the shared extraction pages are absent")
def test_warming_the_date_parser_changes_no_extraction():
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, mode, str(PAGES), "160"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for mode in ("cold", "warm")]
    cold, warm = (json.loads(p.communicate(timeout=300)[0]) for p in procs)
    assert cold["dateparser"], "no page reached the date parser: the comparison would prove nothing"
    assert cold["dates"] > 80
    assert cold == warm


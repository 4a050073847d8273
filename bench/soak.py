"""Soak run of the service: `ingest run` for N minutes against a simulated web.

200 feeds (20 hosts x 10 feeds, 20 entries each, 100 ms latency); every
feed gains one entry every --grow seconds. Default politeness settings
(per_host 2, host_delay 1 s). Prints what the simulated web saw: requests,
feed requests, 304s, page requests, and the most requests in flight at one
host; and what the store holds.

    python bench/soak.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simweb import SimWeb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--feeds", type=int, default=10)
    ap.add_argument("--grow", type=float, default=120, help="seconds between new entries on every feed")
    args = ap.parse_args()
    web = SimWeb(hosts=args.hosts, feeds=args.feeds, entries=20, latency=0.1, port=18090).start()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        feeds = "".join(f'[[feeds]]\nurl = "{u}"\n' for u in web.feed_urls())
        cfg.write_text(f'[paths]\nseeds = "{ROOT / "seeds"}"\nstore = "store"\n'
                       '[fetch]\nallow_private_networks = true\n'
                       '[schedule]\npoll_interval = "1m"\nmin_interval = "30s"\nmax_interval = "2m"\n' + feeds)
        log = Path(tmp) / "ingest.log"
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "--log-file", str(log),
                                 "run"], cwd=ROOT)
        start = time.monotonic()
        next_grow = start + args.grow
        try:
            while time.monotonic() - start < args.minutes * 60:
                time.sleep(1)
                if time.monotonic() >= next_grow:
                    web.control("grow")
                    next_grow += args.grow
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
        stats = web.control("stats")
        db = sqlite3.connect(Path(tmp) / "store" / "ingest.db")
        pages = dict(db.execute("SELECT outcome, COUNT(*) FROM pages GROUP BY outcome").fetchall())
        states = dict(db.execute("SELECT state, COUNT(*) FROM feeds GROUP BY state").fetchall())
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        errors = sum(1 for line in log.read_text().splitlines() if " ERROR " in line)
        web.stop()
    print(json.dumps({"minutes": args.minutes, "feeds": args.hosts * args.feeds, "exit_code": code,
                      "sim_web": stats, "pages_by_outcome": pages, "feeds_by_state": states,
                      "integrity": integrity, "error_log_lines": errors}, indent=1))


if __name__ == "__main__":
    main()

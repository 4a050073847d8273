"""Scaling out on PostgreSQL: N workers against one worker, and PostgreSQL against SQLite.

On the real-page simulated web (bench/simweb.py: saved news pages, 100 ms
latency), each run starts from an empty store and ends when every page of
every feed is stored:

  (1) one `ingest run` worker with one extraction process   (the baseline)
  (2) two `ingest run` workers with one extraction process each
  (3) `ingest poll` on PostgreSQL, one process with two extraction processes
  (4) `ingest poll` on SQLite, the same                       (the default)

and prints pages/s with the ratios (2)/(1) and (3)/(4). With ``--only polite``,
the issue-24 politeness-bound web instead (20 hosts x 4 feeds x 15 entries,
latency drawn from 50-800 ms per request, per_host 2, host_delay 0.2 s):

  (5) `ingest poll` on SQLite, two extraction processes
  (6) two `ingest run` workers on PostgreSQL, one extraction process each

and the time ratio (6)/(5) (target <= 0.6). Workers are timed
from the moment `ingest feeds sync` hands them the feeds (they are already
running and registered) to the last page's row; polls as the whole command.
Needs a PostgreSQL server (INGEST_BENCH_PG, default the local one); each run
gets a database of its own, dropped afterwards.

    python bench/scale.py [--hosts 20 --feeds 4 --entries 10 --latency 0.1]
    python bench/scale.py --only polite
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from run import make_seeds, run_ingest  # noqa: E402
from simweb import SimWeb  # noqa: E402

SERVER = os.environ.get("INGEST_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def database() -> str:
    import psycopg

    name = f"ingest_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(SERVER)._replace(path="/" + name))


def drop(url: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


POLITE = 'host_delay = "0.2s"\nper_host = 2\n'  # the issue-24 politeness-bound set-up


def write_config(folder: Path, feeds: list[str], seeds: Path, *, pg: str = "", processes: int = 0,
                 fetch: str = "host_delay = 0\nper_host = 4\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "config.toml"
    store = f'[store]\nurl = "{pg}"\n' if pg else ""
    cfg.write_text(f'[paths]\nseeds = "{seeds}"\nstore = "store"\n'
                   f"[fetch]\nallow_private_networks = true\n{fetch}robots = true\n"
                   f'[worker]\nprocesses = {processes}\n{store}[web]\nlisten = ""\n'
                   '[schedule]\npoll_interval = "1s"\nmin_interval = "1d"\n'
                   + "".join(f'[[feeds]]\nurl = "{u}"\n' for u in feeds))
    return cfg


def workers_run(folder: Path, feeds: list[str], seeds: Path, n_workers: int, expected: int,
                fetch: str | None = None) -> tuple[float, int]:
    """(seconds, pages stored) for ``n_workers`` `ingest run` workers with one extraction process each."""
    url = database()
    procs: list[subprocess.Popen] = []
    try:
        cfg = write_config(folder, feeds, seeds, pg=url, processes=1, **({"fetch": fetch} if fetch else {}))
        subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "migrate"], cwd=ROOT, check=True,
                       capture_output=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for i in range(n_workers):
            with (folder / f"worker{i}.log").open("w") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "run"],
                                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log))
        import psycopg

        with psycopg.connect(url, autocommit=True) as watch:  # one connection, looked at twice a second
            def count(sql: str) -> int:
                return watch.execute(sql).fetchone()[0]

            while count("SELECT COUNT(*) FROM workers") < n_workers:  # all up before the feeds arrive
                time.sleep(0.1)
            started = time.time()
            subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "feeds", "sync"], cwd=ROOT,
                           check=True, capture_output=True)
            done = "SELECT COUNT(*) FROM pages WHERE retry_at IS NULL"
            while count(done) < expected or count("SELECT COUNT(*) FROM feeds WHERE last_poll IS NULL"):
                if any(p.poll() is not None for p in procs):
                    sys.exit(f"a worker died: see {folder}")
                time.sleep(0.5)
            # the last page's commit time, not when this loop noticed it
            seconds = watch.execute("SELECT MAX(fetched) FROM pages").fetchone()[0] - started
            pages = count(done)
        for i in range(n_workers):  # how the work was shared
            log = (folder / f"worker{i}.log").read_text()
            print(f"  worker {i}: {log.count('event=hosts_leased')} passes, {log.count('event=kept ')} kept",
                  file=sys.stderr)
        return seconds, pages
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        drop(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--feeds", type=int, default=4)
    ap.add_argument("--entries", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--only", choices=["workers", "backends", "polite"], help="run one comparison only")
    args = ap.parse_args()
    if args.only == "polite":
        polite()
        return
    expected = args.hosts * args.feeds * args.entries
    load = os.getloadavg()[0]
    web = SimWeb(args.hosts, args.feeds, args.entries, args.latency, port=18110).start()
    rows: list[tuple[str, float, float]] = []
    try:
        feeds = web.feed_urls()
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            seeds = make_seeds(tmp)
            if args.only != "backends":
                for label, n in (("(1) 1 worker x 1 extraction process", 1),
                                 ("(2) 2 workers x 1 extraction process", 2)):
                    secs, pages = workers_run(tmp / f"w{n}", feeds, seeds, n, expected)
                    rows.append((label, secs, pages / secs))
            if args.only != "workers":
                url = database()
                try:
                    cfg = write_config(tmp / "pg", feeds, seeds, pg=url, processes=2)
                    subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "feeds", "sync"],
                                   cwd=ROOT, check=True, capture_output=True)
                    secs, out, _ = run_ingest(cfg, "poll", "--json")
                    rows.append(("(3) ingest poll, PostgreSQL, 2 processes", secs, out["pages_fetched"] / secs))
                finally:
                    drop(url)
                cfg = write_config(tmp / "sqlite", feeds, seeds, processes=2)
                secs, out, _ = run_ingest(cfg, "poll", "--json")
                rows.append(("(4) ingest poll, SQLite, 2 processes", secs, out["pages_fetched"] / secs))
    finally:
        web.stop()
    print(f"simulated web: {args.hosts} hosts x {args.feeds} feeds x {args.entries} real pages "
          f"({expected} pages), {args.latency * 1000:.0f} ms latency; {os.cpu_count()} cores; load {load:.1f}")
    by = {label[:3]: pps for label, _, pps in rows}
    for label, secs, pps in rows:
        print(f"{label:<44} {secs:6.1f} s  {pps:6.1f} pages/s")
    if "(1)" in by:
        print(f"2 workers / 1 worker:  {by['(2)'] / by['(1)']:.2f}x   (target >= 1.6)")
    if "(3)" in by:
        print(f"PostgreSQL / SQLite:   {by['(3)'] / by['(4)']:.2f}x   (target >= 0.85)")


def polite(hosts: int = 20, feeds: int = 4, entries: int = 15) -> None:
    """Issue 24's politeness-bound web: one SQLite poll against two PostgreSQL workers."""
    expected = hosts * feeds * entries
    web = SimWeb(hosts, feeds, entries, 0.05, port=18120, latency_max=0.8).start()
    try:
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            seeds = make_seeds(tmp)
            load = os.getloadavg()[0]
            cfg = write_config(tmp / "sqlite", web.feed_urls(), seeds, processes=2, fetch=POLITE)
            one, out, _ = run_ingest(cfg, "poll", "--json")
            two, pages = workers_run(tmp / "w2", web.feed_urls(), seeds, 2, expected, fetch=POLITE)
    finally:
        web.stop()
    print(f"politeness-bound web: {hosts} hosts x {feeds} feeds x {entries} real pages ({expected} pages), "
          f"latency 50-800 ms, per_host 2, host_delay 0.2 s; {os.cpu_count()} cores; load {load:.1f}")
    print(f"(5) ingest poll, SQLite, 2 processes        {one:6.1f} s  ({out['pages_fetched']} pages)")
    print(f"(6) 2 workers x 1 process, PostgreSQL       {two:6.1f} s  ({pages} pages)")
    print(f"2 workers / 1 SQLite poll (time):  {two / one:.2f}   (target <= 0.6)")


if __name__ == "__main__":
    main()

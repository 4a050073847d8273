"""End-to-end performance benchmark on a simulated web (bench/simweb.py).

Prints, for one run, side by side:

  (a) a naive sequential ingester (feedparser + httpx.get + trafilatura.extract
      in a plain loop) on the same web, on a sample of its feeds;
  (b) `ingest poll` on a fresh store (a subprocess, as users run it);
  (c) the extraction bound: 2 x single-core pages/s of the pipeline's own
      extraction (ingest.run.executor.analyse) on the same pages, this run;
  (d) a second `ingest poll` after every feed gained one entry;
  (e) a re-poll of 10,000 unchanged feeds (conditional GET -> 304);
  (f) peak RSS of the ingest process (with its workers) in each run;
  (g) `ingest score` throughput in documents/s;
  (i) the WARC archive: a fresh poll with [archive] off and on, the archive's bytes a page, and
      `ingest reextract` (from the archive, no network) against the extraction bound;
  (h) memory: a first poll of 10,000 feeds with one light page each, peak PSS summed over the
      whole process tree (the poll, its fork server and extraction workers), sampled every 0.1 s;
  with --baseline-rev REV, (b), (d), (e), (g) and (h) are also run by that git revision (a git
  worktree) on the same simulated web, in the same run, and each figure is printed beside it with
  the ratio (this tree / baseline): "before and after" without a second machine state;
  and a scale check: a poll of 100 new entries with 100,000 articles already
  in the store, against the same poll on an empty store.

The benchmark config sets host_delay = 0 and per_host = 4: the simulated
hosts are ours, and the point is the pipeline, not politeness.

    python bench/run.py [--hosts 20 --feeds 5 --entries 20 --latency 0.1]
                        [--repoll-feeds 10000] [--corpus 100000] [--skip ...] [--baseline-rev REV]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from simweb import SimWeb, load_pages, load_texts, page_html  # noqa: E402

from ingest.config.settings import FetchSettings  # noqa: E402


def write_config(folder: Path, feeds: list[str], seeds: Path, extra: str = "", polite: bool = False) -> Path:
    """``polite``: the default politeness (host_delay 1 s, per_host 2), else none (host_delay 0)."""
    cfg = folder / "config.toml"
    body = "".join(f'[[feeds]]\nurl = "{u}"\n' for u in feeds)
    fetch = "" if polite else "host_delay = 0\nper_host = 4\n"
    cfg.write_text(f'[paths]\nseeds = "{seeds}"\nstore = "store"\n'
                   f"[fetch]\nallow_private_networks = true\n{fetch}robots = true\n"
                   f"{extra}\n{body}")
    return cfg


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the fork server's workers are its grandchildren)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        entry = proc.name
        if entry.isdigit():
            try:
                with (proc / "stat").open("rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process tree in MB: shared pages (the forked workers share the
    fork server's imports) are split between the processes, so the sum is what the tree costs."""
    total = 0
    for p in _tree(pid):
        try:
            with Path(f"/proc/{p}/smaps_rollup").open() as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total / 1024


class PeakPss:
    """Samples a process tree's PSS in a thread until stopped; ``peak`` in MB."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        import threading

        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_pss_mb(self.pid))
            self._stop.wait(self.every)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_ingest(cfg: Path, *args: str, root: Path = ROOT, pss: bool = False,
               cpu: list[float] | None = None) -> tuple[float, dict | None, float]:
    """(seconds, --json output, peak memory MB) of one `ingest` command run from ``root`` (a checkout).
    The memory is the peak RSS of the largest process, or with ``pss`` the peak PSS of the whole tree;
    ``cpu`` gets the CPU seconds of the command's own process (not its workers) appended."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:  # files: pipes could fill up
        env = {**os.environ, "PYTHONPATH": str(root)}  # that checkout's package, not the installed one
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "--log-level", "WARNING",
                                 *args], cwd=root, stdout=out_f, stderr=err_f, env=env)
        sampler = PeakPss(proc.pid) if pss else None
        _, status, usage = os.wait4(proc.pid, 0)
        peak = sampler.stop() if sampler is not None else usage.ru_maxrss / 1024
        if cpu is not None:
            cpu.append(usage.ru_utime + usage.ru_stime)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if proc.returncode != 0:
        sys.exit(f"ingest {' '.join(args[:2])} failed:\n{err.decode()[-3000:]}")
    try:
        data = json.loads(out) if out.strip().startswith(b"{") else None
    except json.JSONDecodeError:
        data = None
    return seconds, data, peak


def make_seeds(folder: Path) -> Path:
    """Three Reuters 'gold' stories as the topic (about 1 in 100 simulated pages is on it)."""
    import gzip

    seeds = folder / "seeds"
    seeds.mkdir()
    data = ROOT.parent / "shared" / "data" / "reuters" / "articles.jsonl.gz"
    picked = []
    if data.exists():
        with gzip.open(data, "rt", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                if "gold" in d["topics"] and len(d["body"].split()) > 150 and d["title"]:
                    picked.append(d)
                if len(picked) == 3:
                    break
    for i, d in enumerate(picked):
        (seeds / f"{i:03d}.txt").write_text(d["title"].title() + "\n\n" + d["body"], encoding="utf-8")
    if not picked:
        for p in sorted((ROOT / "seeds").glob("*.txt")):
            (seeds / p.name).write_bytes(p.read_bytes())
    return seeds


def naive(web: SimWeb, feeds: list[str]) -> tuple[float, int]:
    """The plain loop everyone writes first: one request at a time, extraction inline."""
    import feedparser
    import httpx
    import trafilatura

    pages = 0
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for url in feeds:
            parsed = feedparser.parse(client.get(url).content)
            for entry in parsed.entries:
                html = client.get(entry.link).content
                trafilatura.extract(html, url=entry.link, with_metadata=True)
                pages += 1
    return time.monotonic() - started, pages


def extraction_bound(n: int = 300, light: bool = False) -> float:
    """2 x the pages/s one core manages with the pipeline's own analyse() on the pages the web serves."""
    from ingest.text.analysis import analyse

    pages = ([] if light else load_pages()[:n]) or [page_html(t, b, "Site 1") for t, b in load_texts()[:n]]
    analyse(pages[0], "http://127.1.0.2/a/0/0.html")  # imports, caches
    started = time.process_time()
    for i, html in enumerate(pages):
        analyse(html, f"http://127.1.0.2/a/0/{i}.html")
    return 2 * len(pages) / (time.process_time() - started)


def score_rate(folder: Path, seeds: Path, n: int = 5000, root: Path = ROOT) -> float:
    texts = load_texts(limit=n, seed=3)
    files = folder / "score"
    files.mkdir(parents=True)
    paths = []
    for i, (t, b) in enumerate(texts):
        p = files / f"{i}.txt"
        p.write_text(t + "\n\n" + b, encoding="utf-8")
        paths.append(str(p))
    cfg = write_config(folder, [], seeds)
    # startup (imports, wordfreq) timed apart: a one-file run
    one, _, _ = run_ingest(cfg, "score", paths[0], root=root)
    many, _, _ = run_ingest(cfg, "score", *paths, root=root)
    return (len(paths) - 1) / max(1e-9, many - one)


def fill_store(store_dir: Path, n: int, seed_texts: list[tuple[str, str]]) -> None:
    """n articles (rows, corpus files, LSH keys, pages, entries, sources) written in bulk."""
    from ingest.sources.urls import url_hash
    from ingest.store import STREAM_WINDOW, Store, corpus_text, pack
    from ingest.text.fingerprint import NUM_PERM, band_keys, text_hash
    from ingest.text.terms import term_counts

    store = Store.open(store_dir)
    store.sync_feeds([("http://127.9.0.1/feed.xml", "filler")])
    rng = random.Random(5)
    db = store.db
    db.execute("BEGIN")
    for i in range(n):
        title, body = seed_texts[i % len(seed_texts)]
        url = f"http://127.9.{i // 60000}.{i % 250 + 2}/old/{i}.html"
        name = f"{i:03d}_{url_hash(url)}.txt"
        (store.corpus / name).write_text(corpus_text(title, body), encoding="utf-8")
        # stored stories are not the ones the poll will meet: their signatures share no band
        sig = rng.randbytes(NUM_PERM * 4)
        cur = db.execute(
            "INSERT INTO articles (number, url, canonical_url, title, fetched, text_hash, score, threshold, terms, "
            "path, minhash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (i, url, url, title, 1e9 + i, text_hash(f"{i}{body}"), 0.5, 0.2, "[]", f"corpus/{name}", sig))
        aid = cur.lastrowid
        db.execute("UPDATE articles SET site=? WHERE id=?", (f"site{i % 40}.example", aid))
        db.execute("INSERT INTO articles_fts (rowid, title, text) VALUES (?,?,?)", (aid, title, body))
        db.executemany("INSERT INTO lsh (key, article_id) VALUES (?,?)", ((k, aid) for k in band_keys(sig)))
        pid = db.execute("INSERT INTO pages (url, fetched, outcome, score, article_id) VALUES (?,?,?,?,?)",
                         (url, 1e9 + i, "kept", 0.5, aid)).lastrowid
        db.execute("INSERT INTO entries (feed_id, key, link, first_seen, page_id) VALUES (1,?,?,?,?)",
                   (f"old-{i}", url, 1e9 + i, pid))
        db.execute("INSERT INTO sources (article_id, url, feed_id, first_seen) VALUES (?,?,1,?)", (aid, url, 1e9))
        if i >= n - STREAM_WINDOW:  # the model's window is full, as in a store that has run for a while
            db.execute("INSERT INTO stream (page_id, counts) VALUES (?,?)",
                       (pid, pack(term_counts(corpus_text(title, body)))))
        if i % 10000 == 9999:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    store.close()


@contextlib.contextmanager
def checkouts(tmp: Path, baseline: str | None, baseline_first: bool = False) -> Iterator[list[tuple[str, Path]]]:
    """This tree, and with ``baseline`` that revision checked out as a git worktree (removed after);
    ``baseline_first`` runs the baseline first (to tell an order effect from a difference)."""
    trees: list[tuple[str, Path]] = [("this tree", ROOT)]
    worktree = None
    try:
        if baseline:
            worktree = tmp / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(worktree), baseline], cwd=ROOT, check=True,
                           capture_output=True)
            trees.append((f"rev {baseline}", worktree))
        yield trees[::-1] if baseline_first else trees
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)


def ratio_row(name: str, values: dict[str, float], unit: str) -> list[tuple[str, str]]:
    """With a baseline: the figure of each tree and this tree / baseline."""
    if len(values) < 2:
        return []
    a = values["this tree"]
    b_label, b = next((k, v) for k, v in values.items() if k != "this tree")
    return [(f"{name}: this tree / {b_label}", f"{a:.1f} / {b:.1f} {unit} = {a / b:.2f}")]


def idle_pss(cfg: Path, root: Path, timeout: float = 600.0) -> tuple[float, float, int]:
    """(seconds until idle, peak PSS MB over 5 s once idle, processes then) of `ingest run` on ``cfg``'s store, every
    feed made due first: the service polls them all, and is idle when its process pool has exited
    and, after it, multiprocessing's resource tracker (sampled after 30 s if the tracker stays)."""
    import sqlite3

    db = sqlite3.connect(cfg.parent / "store" / "ingest.db")
    db.execute("UPDATE feeds SET next_poll = 0")
    db.commit()
    db.close()
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.NamedTemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "run"], cwd=root,
                                stdout=log, stderr=log, env=env)
        started = time.monotonic()
        try:
            def polled() -> bool:
                return b"event=poll_done" in Path(log.name).read_bytes()

            while not polled() and time.monotonic() - started < timeout and proc.poll() is None:
                time.sleep(0.5)
            while len(_tree(proc.pid)) > 2 and time.monotonic() - started < timeout and proc.poll() is None:
                time.sleep(0.5)  # the pool exits IDLE_POOL s after its last task
            settle = time.monotonic() + 30.0  # then the resource tracker, unless a semaphore still holds it
            while len(_tree(proc.pid)) > 1 and time.monotonic() < settle and proc.poll() is None:
                time.sleep(0.2)
            time.sleep(1.0)  # and the service gives its freed heap back
            waited = time.monotonic() - started
            peak, procs = 0.0, len(_tree(proc.pid))
            for _ in range(50):
                peak = max(peak, tree_pss_mb(proc.pid))
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    return waited, peak, procs


def memory_run(tmp: Path, seeds: Path, n_feeds: int, latency: float,
               trees: list[tuple[str, Path]]) -> list[tuple[str, str]]:
    """(h): a first poll of ``n_feeds`` feeds (10 per host) with one light page each at the default
    politeness, peak PSS of the process tree, by each checkout on the same web; then (i) the idle
    service on the same feeds."""
    hosts = max(1, n_feeds // 10)
    web = SimWeb(hosts, 10, 1, latency, port=18103, real_pages=False).start()
    rows = []
    try:
        peaks, idles = {}, {}
        for label, root in trees:
            folder = tmp / f"memory-{len(peaks)}"
            folder.mkdir()
            cfg = write_config(folder, web.feed_urls()[:n_feeds], seeds, polite=True,
                               extra='[web]\nlisten = ""\n')
            load = os.getloadavg()[0]
            secs, out, peak = run_ingest(cfg, "poll", "--json", root=root, pss=True)
            peaks[label] = peak
            rows.append((f"(h) first poll, {n_feeds:,} feeds ({hosts:,} hosts x 10) x 1 light page, default "
                         f"politeness ({label})", f"peak PSS of the process tree {peak:.0f} MB (target < 250); "
                         f"{out['pages_fetched']} pages in {secs:.1f} s; load {load:.1f}"))
            cpu: list[float] = []
            load = os.getloadavg()[0]
            secs, out, _ = run_ingest(cfg, "poll", "--json", root=root, cpu=cpu)
            rows.append((f"(e2) re-poll of the same feeds, all unchanged ({label})",
                         f"{secs:.1f} s (target < 12; floors: 9 s of politeness, 10 feeds a host at host_delay 1 s, "
                         f"and {n_feeds * latency / FetchSettings.concurrency:.1f} s of the default concurrency "
                         f"{FetchSettings.concurrency} at this latency); "
                         f"{out['feeds_not_modified']} not modified; CPU of the poll process {cpu[0]:.1f} s; "
                         f"load {load:.1f}"))
            web.control("grow")  # a new entry in every feed: the service's poll uses its worker processes
            waited, idle, procs = idle_pss(cfg, root)
            idles[label] = idle
            rows.append((f"(i) idle `ingest run`, the same {n_feeds:,} feeds ({label})",
                         f"PSS {idle:.0f} MB (target < 120) once its poll of them all (one new page each) was done and "
                         f"its process pool had exited ({waited:.0f} s after the start; {procs} process(es))"))
        rows += ratio_row("(h) peak PSS", peaks, "MB") + ratio_row("(i) idle PSS", idles, "MB")
    finally:
        web.stop()
    return rows


def archive_run(tmp: Path, seeds: Path, args: argparse.Namespace, res: dict[str, float]) -> list[tuple[str, str]]:
    """(i) the WARC archive's cost: a fresh poll with [archive] off, then on, on the same web (one run);
    the archive's bytes per page; `ingest reextract` (every page from the archive, no network) against
    the extraction bound."""
    rows, pps = [], {}
    for i, (label, extra) in enumerate((("archive off", "[archive]\nenabled = false\n"), ("archive on", ""))):
        web = SimWeb(args.hosts, args.feeds, args.entries, args.latency, port=18150 + 10 * i,
                     real_pages=not args.light_pages).start()
        try:
            folder = tmp / f"archive-{i}"
            folder.mkdir()
            cfg = write_config(folder, web.feed_urls(), seeds, extra)
            secs, out, _ = run_ingest(cfg, "poll", "--json")
        finally:
            web.stop()
        pps[label] = out["pages_fetched"] / secs
        rows.append((f"(i) ingest poll, fresh store ({label})", f"{out['pages_fetched']} pages in {secs:.1f} s = "
                                                                f"{pps[label]:.1f} pages/s"))
    on, off = pps["archive on"], pps["archive off"]
    rows.append(("(i) pages/s, archive on / off", f"{on:.1f} / {off:.1f} = {on / off:.2f} (target >= 0.95)"))
    archive = tmp / "archive-1" / "store" / "archive"
    files = list(archive.glob("*.warc.gz"))
    size = sum(f.stat().st_size for f in files)
    secs, out, _ = run_ingest(tmp / "archive-1" / "config.toml", "reextract", "--json")
    pages = out["pages"]
    rows.append(("(i) archive size", f"{size / 1e6:.1f} MB in {len(files)} file(s) for {pages} pages = "
                                     f"{size / max(1, pages) / 1000:.1f} KB a page"))
    bound = res.get("bound_pps") or extraction_bound(light=args.light_pages)
    res["bound_pps"] = bound
    rows.append(("(i) ingest reextract (no network)", f"{pages} pages in {secs:.1f} s = {pages / secs:.1f} pages/s, "
                                                      f"{pages / secs / bound:.2f} of the extraction bound "
                                                      f"({bound:.1f} pages/s; target >= 0.9)"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--feeds", type=int, default=5)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--naive-feeds", type=int, default=10, help="feeds the naive loop runs on (it is slow)")
    ap.add_argument("--repoll-feeds", type=int, default=10000)
    ap.add_argument("--corpus", type=int, default=100000)
    ap.add_argument("--memory-feeds", type=int, default=10000, help="feeds of the memory run (h)")
    ap.add_argument("--baseline-rev", help="git revision whose (b), (d), (e), (g) and (h) are measured too, "
                                           "in the same run, beside this tree's")
    ap.add_argument("--baseline-first", action="store_true",
                    help="run the baseline revision before this tree (order effects: caches, a warming machine)")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["naive", "fresh", "repoll", "scale", "score", "memory", "archive"],
                    help="parts to leave out (fresh = (b)-(d))")
    ap.add_argument("--light-pages", action="store_true",
                    help="serve small synthetic pages (Reuters text in a news template) instead of real pages")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    res: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_s, checkouts(Path(tmp_s), args.baseline_rev,
                                                                  args.baseline_first) as trees:
        tmp = Path(tmp_s)
        seeds = make_seeds(tmp)
        if "fresh" not in args.skip:
            fresh: dict[str, float] = {}
            second: dict[str, float] = {}
            for i, (label, root) in enumerate(trees):
                web = SimWeb(args.hosts, args.feeds, args.entries, args.latency, port=18100 + 10 * i,
                             real_pages=not args.light_pages).start()
                try:
                    feeds = web.feed_urls()
                    n_pages = len(feeds) * args.entries
                    if "naive" not in args.skip and label == "this tree":
                        sample = feeds[:: max(1, len(feeds) // args.naive_feeds)][: args.naive_feeds]
                        secs, pages = naive(web, sample)
                        res["naive_pps"] = pages / secs
                        rows.append(("(a) naive sequential loop", f"{pages} pages in {secs:.1f} s = "
                                                                  f"{res['naive_pps']:.1f} pages/s"))
                    folder = tmp / f"fresh-{i}"
                    folder.mkdir()
                    cfg = write_config(folder, feeds, seeds)
                    load = os.getloadavg()[0]
                    secs, out, rss = run_ingest(cfg, "poll", "--json", root=root)
                    fresh[label] = out["pages_fetched"] / secs
                    rows.append((f"(b) ingest poll, fresh store ({label})",
                                 f"{out['pages_fetched']} pages of {n_pages} in {secs:.1f} s = {fresh[label]:.1f} "
                                 f"pages/s (kept {out['kept']}, peak RSS {rss:.0f} MB); load {load:.1f}"))
                    if label == "this tree":
                        res["ingest_pps"] = fresh[label]
                        res["bound_pps"] = extraction_bound(light=args.light_pages)
                        rows.append(("(c) extraction bound (2 cores)", f"{res['bound_pps']:.1f} pages/s"))
                    web.control("grow")
                    secs, out, rss = run_ingest(cfg, "poll", "--json", root=root)
                    second[label] = secs
                    rows.append((f"(d) second poll, +1 entry per feed ({label})",
                                 f"{out['pages_fetched']} pages, {len(feeds)} feeds in {secs:.1f} s "
                                 f"(peak RSS {rss:.0f} MB)"))
                finally:
                    web.stop()
            rows += ratio_row("(b) pages/s", fresh, "pages/s") + ratio_row("(d) seconds", second, "s")
        if "repoll" not in args.skip:
            hosts = max(1, args.repoll_feeds // 50)
            repoll: dict[str, float] = {}
            for i, (label, root) in enumerate(trees):
                big = SimWeb(hosts, 50, 0, args.latency, port=18101 + 10 * i).start()
                try:
                    folder = tmp / f"repoll-{i}"
                    folder.mkdir()
                    cfg = write_config(folder, big.feed_urls()[: args.repoll_feeds], seeds)
                    first, out1, _ = run_ingest(cfg, "poll", "--json", root=root)
                    secs, out, rss = run_ingest(cfg, "poll", "--json", root=root)
                    stats = big.control("stats")
                finally:
                    big.stop()
                repoll[label] = secs
                rows.append((f"(e) re-poll of unchanged feeds ({label})",
                             f"{args.repoll_feeds} feeds ({hosts} hosts) in {secs:.1f} s; {out['feeds_not_modified']} "
                             f"not modified, 304s served {stats['not_modified']}; first poll {first:.1f} s"))
                rows.append((f"(f) peak RSS, 10k-feed re-poll ({label})", f"{rss:.0f} MB"))
            rows += ratio_row("(e) re-poll seconds", repoll, "s")
        if "scale" not in args.skip:
            texts = load_texts()
            scale_web = SimWeb(5, 4, 5, args.latency, port=18102,
                               real_pages=not args.light_pages).start()  # 100 new entries
            try:
                times = {}
                for label, n in (("empty", 0), ("full", args.corpus)):
                    (tmp / label).mkdir()
                    if n:
                        t0 = time.monotonic()
                        fill_store(tmp / label / "store", n, texts)
                        fill = time.monotonic() - t0
                    cfg = write_config(tmp / label, scale_web.feed_urls(), seeds)
                    times[label], out, rss_s = run_ingest(cfg, "poll", "--json")
                rows.append(("scale: 100 new entries", f"empty store {times['empty']:.1f} s; with {args.corpus:,} "
                                                       f"articles {times['full']:.1f} s "
                                                       f"({times['full'] / times['empty']:.2f}x; store filled in "
                                                       f"{fill:.0f} s; peak RSS {rss_s:.0f} MB)"))
            finally:
                scale_web.stop()
        if "memory" not in args.skip:
            rows += memory_run(tmp, seeds, args.memory_feeds, args.latency, trees)
        if "archive" not in args.skip:
            rows += archive_run(tmp, seeds, args, res)
        if "score" not in args.skip:
            scores: dict[str, float] = {}
            for i, (label, root) in enumerate(trees):
                scores[label] = score_rate(tmp / f"score-{i}", seeds, root=root)
                rows.append((f"(g) ingest score ({label})", f"{scores[label]:,.0f} documents/s"))
            res["score_dps"] = scores["this tree"]
            rows += ratio_row("(g) documents/s", scores, "documents/s")
    width = max(len(r[0]) for r in rows)
    print(f"simulated web: {args.hosts} hosts x {args.feeds} feeds x {args.entries} entries, "
          f"{args.latency * 1000:.0f} ms latency")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if "naive_pps" in res and "ingest_pps" in res:
        print(f"ingest / naive:            {res['ingest_pps'] / res['naive_pps']:.1f}x")
    if "bound_pps" in res and "ingest_pps" in res:
        print(f"ingest / extraction bound: {res['ingest_pps'] / res['bound_pps']:.2f}   (target >= 0.85)")


if __name__ == "__main__":
    main()

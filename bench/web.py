"""Web view speed: server time per page and per search on a store of 100,000 articles,
against the same requests on a store of 1,000 (the baseline, same run).

Two views of each figure: the app called in-process through httpx's ASGI transport (the
server's own time: routing, store queries, templates), and real HTTP to the real server
(uvicorn on a loopback socket, as ``ingest serve`` runs it) over one keep-alive connection,
as a browser sends them, beside a new connection per request (the same run's baseline: a
keep-alive request must not be slower than a fresh one; before TCP_NODELAY it was ~40 ms).

    python bench/web.py [--corpus 100000] [--baseline 1000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from run import fill_store  # noqa: E402

REUTERS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "reuters" / "articles.jsonl.gz"
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "articles"
SEARCHES = ["gold", '"north korea"', "oil AND prices", "bank*", "trade NOT japan", "zzzznothing"]


def texts() -> list[tuple[str, str]]:
    if REUTERS.exists():
        with gzip.open(REUTERS, "rt", encoding="utf-8") as fh:
            docs = [json.loads(line) for line in fh]
        return [(d["title"] or d["body"][:60], d["body"]) for d in docs if len(d["body"].split()) > 40][:5000]
    out = []
    for p in sorted(FIXTURES.glob("*.txt")):
        title, _, body = p.read_text(encoding="utf-8").partition("\n\n")
        out.append((title, body))
    return out


async def measure(store_dir: Path, repeat: int) -> dict[str, float]:
    from ingest.config import Config, Paths
    from ingest.out.web import WebContext, make_app
    from ingest.run.metrics import Metrics
    from ingest.store import Store

    store = Store.open(store_dir)
    config = Config(path=store_dir / "config.toml", paths=Paths(seeds=store_dir, store=store_dir))
    app = make_app(WebContext(store, lambda: config, lambda: [], Metrics()))
    top = store.list_articles(limit=1)[0]["id"]
    paths = {"corpus (newest)": "/", "corpus (deep page)": f"/?before={top // 2}",
             "corpus (site filter)": "/?site=site7.example", "corpus (score filter)": "/?min_score=0.4",
             "article": f"/a/{top // 3}", "feeds": "/feeds", "near misses": "/near-misses",
             "healthz": "/healthz", "metrics": "/metrics"}
    paths.update({f"search {q}": "/search?" + httpx.QueryParams({"q": q}).__str__() for q in SEARCHES})
    out = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        for name, path in paths.items():
            await client.get(path)  # warm caches
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = await client.get(path)
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200, (path, r.status_code)
            out[name] = statistics.median(times) * 1000
    out.update(await over_sockets(app, {k: paths[k] for k in SOCKET_PATHS if k in paths} |
                                  {"stylesheet": "/static/style.css"}, repeat))
    store.close()
    return out


SOCKET_PATHS = ("corpus (newest)", "article", "search gold")


async def over_sockets(app, paths: dict[str, str], repeat: int) -> dict[str, float]:
    """Median ms per request over real HTTP: one keep-alive connection, and a new one each time."""
    import http.client

    from ingest.out.web import bind, make_server

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = make_server(app)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)

    def timed(path: str, reuse: bool) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        conn.getresponse().read()  # the first request opens the connection
        times = []
        for _ in range(repeat):
            if not reuse:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            times.append(time.perf_counter() - t0)
            assert resp.status == 200, (path, resp.status)
        conn.close()
        return statistics.median(times) * 1000

    out = {}
    for name, path in paths.items():
        out[f"http keep-alive: {name}"] = await asyncio.to_thread(timed, path, True)
        out[f"http new conn: {name}"] = await asyncio.to_thread(timed, path, False)
    server.should_exit = True
    await task
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=int, default=100_000)
    ap.add_argument("--baseline", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    seed = texts()
    results = {}
    for n in (args.baseline, args.corpus):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            fill_store(Path(tmp), n, seed)
            filled = time.perf_counter() - t0
            results[n] = asyncio.run(measure(Path(tmp), args.repeat))
            print(f"store of {n:,} articles filled in {filled:.0f} s", file=sys.stderr)
    base, big = results[args.baseline], results[args.corpus]
    print(f"server time per request, median of {args.repeat} (ms)")
    print(f"{'request':<28} {args.baseline:>10,} {args.corpus:>10,}  ratio  target")
    for name in big:
        target = 10 if name.startswith("http keep-alive: corpus") else 100 if "search" in name else 50
        flag = "ok" if big[name] < target else "MISSED"
        print(f"{name:<28} {base[name]:>10.1f} {big[name]:>10.1f} {big[name] / max(base[name], 1e-9):>6.1f}x"
              f"  <{target} {flag}")

    print("keep-alive ÷ new connection, same requests (a stall would make it > 1):")
    for name in big:
        if name.startswith("http keep-alive: "):
            fresh = big[name.replace("keep-alive", "new conn")]
            print(f"  {name.removeprefix('http keep-alive: '):<24} {big[name] / max(fresh, 1e-9):.2f}")


if __name__ == "__main__":
    main()

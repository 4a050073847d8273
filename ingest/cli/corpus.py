"""The commands that read the corpus and its index: `score`, `export`, `search`, `check`, `migrate`, `corpus sync`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ingest.cli.common import OutputError, short
from ingest.config import Config
from ingest.sources.urls import display, site_of
from ingest.store import open_store
from ingest.text.seeds import load_seeds
from ingest.timefmt import iso as _iso


def cmd_score(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.chunk import score_texts

    names, texts = [], []
    for name in args.files:
        if name == "-":
            names.append("-")
            texts.append(sys.stdin.read())
            continue
        try:
            texts.append(Path(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"ingest score: {name}: cannot read as UTF-8 text: {exc}", file=sys.stderr)
            return 2
        names.append(name)
    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config, readonly=True) as store:
        scored = score_texts(config, store, seeds, texts)
    for w in scored.threshold.warnings:
        print(f"ingest: warning: {w}", file=sys.stderr)
    th = scored.threshold.value
    for name, s in zip(names, scored.scores, strict=True):
        if args.json:
            print(json.dumps({"path": name, "score": s.score, "relevant": s.score >= th, "threshold": th,
                              "terms": list(s.terms)}))
        else:
            verdict = "relevant" if s.score >= th else "not relevant"
            print(f"{s.score:.3f}  {verdict:<12}  {name}  (threshold {th:.3f}; terms: {', '.join(s.terms[:6])})")
    return 0


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    from ingest.cli.report import model_scores

    if args.format in ("warc", "wacz"):
        return _export_archive(config, args)
    with open_store(config, readonly=True) as store:
        current = model_scores(store, config)
        for row in store.articles():
            score, threshold = current.get(row["id"], (row["score"], row["threshold"]))
            body = store.article_body(row)
            text = body[1] if body is not None else None
            sources = store.article_sources(row["id"])
            feeds = list(dict.fromkeys(display(s["feed_url"]) for s in sources if s["feed_url"]))
            entries = [{"url": display(s["url"]), "feed": display(s["feed_url"]) if s["feed_url"] else None,
                        "first_seen": _iso(s["first_seen"]), "source": "feed"} for s in sources]
            if (origin := store.backfill_origins([row["id"]]).get(row["id"])) is not None:
                entries.append({"url": display(origin["link"]), "feed": None, "first_seen": _iso(origin["fetched"]),
                                "source": "backfill", "via": origin["source"],
                                "found_in": display(origin["found_in"]) if "://" in origin["found_in"]
                                else origin["found_in"]})
            print(json.dumps({
                "id": row["id"], "url": display(row["url"]), "canonical_url": display(row["canonical_url"]),
                "title": row["title"],
                "text": text, "author": row["author"] or None, "published": row["published"],
                "fetched": _iso(row["fetched"]), "feeds": feeds, "score": round(score, 6), "path": row["path"],
                "threshold": round(threshold, 6), "kept_score": row["score"],
                "site": site_of(row["site"], row["url"]), "terms": json.loads(row["terms"]),
                "sources": entries,
            }, ensure_ascii=False))
    return 0


def _export_archive(config: Config, args: argparse.Namespace) -> int:
    """The kept articles' archived records as WARC, or a WACZ package (ingest.out.warc_export)."""
    import tempfile

    from ingest.out.warc_export import write_wacz, write_warc

    with open_store(config, readonly=True) as store:
        if args.format == "warc" and args.output:
            with Path(args.output).open("wb") as fh:
                n, _ = write_warc(store, fh)
        elif args.format == "warc":
            n, _ = write_warc(store, sys.stdout.buffer)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(args.output) if args.output else Path(tmp) / "corpus.wacz"
                n = write_wacz(store, path)
                if not args.output:
                    sys.stdout.buffer.write(path.read_bytes())
    sys.stdout.flush()
    print(f"exported the archived pages of {n} article(s) as {args.format.upper()}"
          + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def cmd_search(config: Config, args: argparse.Namespace) -> int:
    from ingest.store import SearchError

    with open_store(config, readonly=True) as store:
        try:
            hits = store.search(args.query, limit=max(1, args.limit), rejected=args.rejected)
        except SearchError as exc:
            print(f"ingest search: {exc}", file=sys.stderr)
            return 2
    for h in hits:
        snippet = h.snippet.replace("\x02", "[").replace("\x03", "]")
        if args.json:
            print(json.dumps({"kind": h.kind, "id": f"{'a' if h.kind == 'article' else 'p'}{h.id}", "title": h.title,
                              "url": display(h.url), "site": site_of(h.site, h.url), "published": h.published,
                              "fetched": _iso(h.fetched), "score": h.score, "snippet": snippet,
                              "rank": round(h.rank, 4)}, ensure_ascii=False))
        else:
            ref = f"{'a' if h.kind == 'article' else 'p'}{h.id}"
            flag = "" if h.kind == "article" else "  (rejected)"
            print(f"{ref:<8} {short(h.title or h.url, 90)}{flag}")
            print(f"{'':<9}{display(h.url)}\n{'':<9}{short(snippet, 160)}")
    if not hits and not args.json:
        print("no match", file=sys.stderr)
    return 0


def cmd_check(config: Config, args: argparse.Namespace) -> int:
    with open_store(config, writer=args.repair, readonly=not args.repair) as store:
        report = store.check(repair=args.repair)
        if store.recovered.get("renamed") or store.recovered.get("removed"):
            report.repaired.insert(0, f"interrupted writes: {store.recovered['renamed']} finished, "
                                      f"{store.recovered['removed']} temp file(s) removed")
    if args.json:
        print(json.dumps({"ok": report.ok, **dataclasses.asdict(report)}))
        return 0 if report.ok else 1
    for line in report.integrity:
        print(f"database: {line}")
    for path in report.missing:
        print(f"missing file: {path}: indexed but gone (deleted by hand?); restore it from a backup")
    for path in report.orphans:
        print(f"unindexed file: {path}: no row in ingest.db (--repair moves it to orphans/)")
    for path in report.misplaced:
        print(f"misplaced file: {path}: its row says the other folder (--repair moves it)")
    for path in report.temp_files:
        print(f"temp file: {path}: left by an interrupted write (--repair finishes or removes it)")
    for line in report.archive:
        print(f"archived copy: {line}")
    for line in report.repaired:
        print(f"repaired: {line}")
    print("store is consistent" if report.ok else "store has problems (listed above)", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    with open_store(config, writer=False) as store:
        version = store.schema_version()
        where = "PostgreSQL" if config.store.url else str(config.paths.store / "ingest.db")
    print(f"{where}: schema version {version} ({store.backend}); up to date")
    return 0


def cmd_corpus(config: Config, args: argparse.Namespace) -> int:
    from ingest.text.corpus import sync_folder

    folder = Path(args.dir)
    if not config.store.url and folder.resolve() == (config.paths.store / "corpus").resolve():
        print(f"ingest corpus sync: {folder} is the store's own corpus folder (SQLite keeps it current)",
              file=sys.stderr)
        return 0
    with open_store(config, readonly=True) as store:
        try:
            done = sync_folder(folder, store.corpus_files(), store.withdrawn_files())
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write: {exc.strerror or exc}") from None
    print(f"{folder}: {done.written} written, {done.unchanged} unchanged, {done.removed} removed (withdrawn)")
    return 0


def add_score(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("score", parents=[common], help="score text files against the seeds",
                       description="Score plain-text files against the seeds without fetching anything. The "
                                   "decision is the one `poll` would make for the same texts arriving in one "
                                   "poll on the same store.")
    p.add_argument("files", nargs="+", metavar="FILE", help="text files; - reads standard input")
    p.add_argument("--json", action="store_true", help='one JSON object per file: {"path", "score", '
                   '"relevant", "threshold", "terms"}')
    p.set_defaults(func=cmd_score)


def add_export(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common], help="write the corpus to stdout as JSON lines",
                       description="The corpus, one JSON object per article: id, url, canonical_url, title, "
                                   "text, author, published, fetched, feeds, score, path (plus site, terms, "
                                   "sources, threshold, kept_score). score and threshold are the article's under "
                                   "the model learned now, as every other screen shows them (for an article "
                                   "older than the model's window: the ones it was kept at); kept_score is the "
                                   "score it was kept at.")
    p.add_argument("--format", choices=["jsonl", "warc", "wacz"], default="jsonl",
                   help="jsonl (default); warc: the kept articles' pages as archived (WARC/1.1 records, gzip "
                        "per record); wacz: those in a WACZ package (WARC, CDXJ index, pages list, "
                        "datapackage.json) that ReplayWeb.page opens")
    p.add_argument("--output", metavar="PATH", help="write to this file instead of stdout (warc, wacz)")
    p.set_defaults(func=cmd_export)


def add_search(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("search", parents=[common], help="full-text search of the corpus",
                       description="Search the kept articles (and with --rejected the rejected pages whose text "
                                   "is still kept), best match first (SQLite FTS5, bm25; a title match weighs "
                                   "more). Query syntax: words (all must match), \"a phrase\", prefix*, "
                                   "OR, NOT (gold NOT coal), parentheses. Matches are shown [like this].")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")
    p.add_argument("--rejected", action="store_true", help="also search rejected pages while their text is kept")
    p.add_argument("--json", action="store_true",
                   help="JSON lines: kind, id, title, url, site, published, fetched, score, snippet, rank")
    p.set_defaults(func=cmd_search)


def add_check(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("check", parents=[common], help="check the index against the corpus files",
                       description="Compare ingest.db with the store folder: database integrity, a file for "
                                   "every article, a row for every file, temp files left by an interrupted "
                                   "write, every archived page's WARC record whole (its digests verified). "
                                   "Exit status 0 when consistent, 1 otherwise. Works while the service runs "
                                   "(read-only); --repair needs the store to itself.")
    p.add_argument("--repair", action="store_true",
                   help="do what is safe and say what was done: finish or undo interrupted writes, put "
                        "misplaced files where their row says, move unindexed files to orphans/, mark a "
                        "corrupted archived copy so it is never served or re-extracted (nothing is deleted; "
                        "a missing file can only come back from a backup)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_check)


def add_migrate(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("migrate", parents=[common], help="create or upgrade the store's schema",
                       description="Create the tables (a new store) or upgrade them to this version's schema, "
                                   "on SQLite or on the PostgreSQL database of [store] url. Safe to run while "
                                   "workers run: they wait for it (an advisory lock on PostgreSQL).")
    p.set_defaults(func=cmd_migrate)


def add_corpus(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("corpus", parents=[common], help="write the corpus folder from the index",
                       description="On PostgreSQL article text lives in the database; `corpus sync DIR` "
                                   "writes it as seeds-format files (NNN_<hex>.txt) into DIR: new and changed "
                                   "articles written atomically, withdrawn ones removed, other files left "
                                   "alone. Idempotent. A worker also keeps [paths] store's corpus/ current "
                                   "every few minutes (one worker, elected).")
    corpus_sub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    q = corpus_sub.add_parser("sync", parents=[common], help="write the corpus articles into DIR")
    q.add_argument("dir", metavar="DIR", help="the folder to write (created if missing)")
    q.set_defaults(func=cmd_corpus)


"""The ``ingest`` command line: parse arguments, call one function, print.

Exit status: 0 success (a poll in which some feeds failed still succeeds),
1 the run itself could not proceed (store locked or unusable), 2 bad
configuration, seeds or arguments. Each command group is a module of this
package; COMMANDS is the table the parser is built from, in the order `--help`
lists them.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from ingest import __version__
from ingest.cli import archive, backfill, corpus, example, feeds, report, review, service
from ingest.cli.common import OutputError
from ingest.cli.logs import setup_logging
from ingest.config import ConfigError, load_config
from ingest.store import StoreError
from ingest.text.seeds import SeedError

DESCRIPTION = """\
seed-ingest follows feeds (RSS, Atom, RDF, JSON Feed, news sitemaps) and keeps
the articles that resemble the example texts in your seeds folder, in a
plain-text corpus with an SQLite index of where each came from (or, with
[store] url, a PostgreSQL database that any number of workers share).
"""


COMMANDS = (  # the parser table: each adds one command and its options
    service.add_run,
    service.add_poll,
    backfill.add_backfill,
    corpus.add_score,
    report.add_digest,
    corpus.add_export,
    report.add_status,
    service.add_serve,
    corpus.add_search,
    review.add_review,
    review.add_mark,
    review.add_rescore,
    corpus.add_check,
    archive.add_show,
    archive.add_archive,
    archive.add_reextract,
    review.add_seeds,
    feeds.add_feeds,
    corpus.add_migrate,
    corpus.add_corpus,
    example.add_example_config,
)


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (defaults set once, on the top parser)."""
    def default(value: str | None) -> str | None:
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=default(None),
                        help="config file (default: $INGEST_CONFIG, else ./config.toml)")
    common.add_argument("--log-level", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        default=default("INFO"), help="log detail, any case (default INFO); DEBUG adds each "
                                                      "request (status, time) and each rejection (score, threshold)")
    common.add_argument("--log-file", metavar="PATH", default=default(None),
                        help="append the log to this file instead of stderr")
    common.add_argument("--log-format", choices=["text", "json"], default=default("text"),
                        help="text: one 'time LEVEL key=value ...' line per event (default); json: one JSON "
                             "object per line (time, level, message and the key=value fields), for log shippers")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common(suppress=True)
    parser = argparse.ArgumentParser(prog="ingest", description=DESCRIPTION, parents=[_common(suppress=False)],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seed-ingest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for add in COMMANDS:
        add(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ingest.cli.typos import hint

    parser = build_parser()
    typo = hint(parser, sys.argv[1:] if argv is None else argv)
    if typo is not None:
        print(typo, file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        setup_logging(args.log_level, args.log_file, args.log_format)
    except OSError as exc:
        print(f"ingest: --log-file {args.log_file}: cannot open for writing: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    try:
        if not getattr(args, "needs_config", True):
            return int(args.func(args))
        config = load_config(args.config)
        return args.func(config, args)
    except BrokenPipeError:
        # the reader went away (`ingest export | head -1`): not an error of ours; exit as a
        # SIGPIPE-terminated tool would, without a traceback when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ConfigError, SeedError) as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    except (StoreError, OutputError) as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, OSError) as exc:  # disk full, read-only store, I/O error
        text = str(exc).lower()
        writing = isinstance(exc, OSError) or "readonly" in text or "disk" in text or "full" in text
        what = "cannot write the store" if writing else "store error"
        print(f"ingest: {what}: {exc}. The store stays consistent (each article is committed with its file "
              f"or not at all; a partial file is removed on the next start); free space or fix permissions "
              f"and run again.", file=sys.stderr)
        return 1


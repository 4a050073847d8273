"""`ingest example-config`: an annotated config.toml to start from (needs no config itself)."""

from __future__ import annotations

import argparse
import sys

from ingest.config.schema import example


def cmd_example_config(args: argparse.Namespace) -> int:
    sys.stdout.write(example())
    return 0


def add_example_config(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("example-config", parents=[common], help="print an annotated config.toml to start from",
                       description="Every key of config.toml commented out at its default, with what it means, "
                                   "and a [[feeds]] table to copy: `ingest example-config > config.toml`, then "
                                   "`ingest feeds add URL`. Reads no config itself.")
    p.set_defaults(func=cmd_example_config, needs_config=False)

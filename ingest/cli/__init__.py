"""The ``ingest`` command line (see ingest.cli.main); one module per command group."""

from ingest.cli.main import COMMANDS, DESCRIPTION, build_parser, main

__all__ = ["COMMANDS", "DESCRIPTION", "build_parser", "main"]

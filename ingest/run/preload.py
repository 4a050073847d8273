"""Imported once by the worker processes' fork server (ingest.run.executor.make_executor).

Everything loaded here is loaded once and shared, copy-on-write, by every
worker forked from the server, instead of once per worker: the extraction
and scoring code, and the word-frequency table of the relevance prior for the
language in $INGEST_PRELOAD_LANGUAGE, and the date parser htmldate falls
back to (dateparser builds every locale's patterns on first use: ~40 MB that
each worker would otherwise build for itself). The server then frees what
loading left behind and freezes its objects, so the workers' garbage collector
never writes to (and so copies) the shared pages.

dateparser's parser keeps no state between dates that changes a result (it is
built without try_previous_locales), so warming it changes no extraction:
tests/run/test_preload.py extracts the same pages with and without it.
"""

import gc
import os

import scipy.optimize  # noqa: F401  (the model's: imported lazily by ingest.judge.relevance, here once for all)
import scipy.sparse  # noqa: F401
import threadpoolctl  # noqa: F401
import trafilatura  # noqa: F401

from ingest.judge import scoring  # noqa: F401
from ingest.judge.model import _frequencies
from ingest.run.memory import release_freed_memory
from ingest.text import analysis  # noqa: F401


def warm_dates() -> None:
    """Build the date parser's per-locale tables now: a string no locale reads makes it try all."""
    try:
        from htmldate.extractors import get_external_parser

        get_external_parser().get_date_data("12 qxzv 2020")
    except Exception:  # an htmldate without it: nothing to warm
        pass


_frequencies(os.environ.get("INGEST_PRELOAD_LANGUAGE", "en"))
warm_dates()
gc.collect()
release_freed_memory()
gc.freeze()

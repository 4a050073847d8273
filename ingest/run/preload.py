"""Imported once by the worker processes' fork server (ingest.run.executor.make_executor).

Everything loaded here is loaded once and shared, copy-on-write, by every
worker forked from the server, instead of once per worker: the extraction
and scoring code, and the word-frequency table of the relevance prior for the
language in $INGEST_PRELOAD_LANGUAGE. The server then frees what loading left
behind and freezes its objects, so the workers' garbage collector never writes
to (and so copies) the shared pages. (Building dateparser's locale tables here
too, ~40 MB each worker builds for itself, changed which dates htmldate finds
and so decisions: tried and left out.)
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

_frequencies(os.environ.get("INGEST_PRELOAD_LANGUAGE", "en"))
gc.collect()
release_freed_memory()
gc.freeze()

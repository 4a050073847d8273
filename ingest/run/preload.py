"""Imported once by the worker processes' fork server (ingest.run.executor.make_executor).

Everything loaded here is loaded once and shared, copy-on-write, by every
worker forked from the server, instead of once per worker: the extraction
and scoring code, and the word-frequency table of the relevance prior
(about 40 MB per copy), for the language in $INGEST_PRELOAD_LANGUAGE.
"""

import os

import scipy.optimize  # noqa: F401  (the model's: imported lazily by ingest.judge.relevance, here once for all)
import scipy.sparse  # noqa: F401
import threadpoolctl  # noqa: F401
import trafilatura  # noqa: F401

from ingest.judge import scoring  # noqa: F401
from ingest.judge.model import _frequencies
from ingest.text import analysis  # noqa: F401

_frequencies(os.environ.get("INGEST_PRELOAD_LANGUAGE", "en"))

"""Logging set-up: one handler on the "ingest" logger, and no secret in any line.

Every formatted line (message, arguments, tracebacks) goes through
:func:`ingest.urls.redact_text`, so a URL with ``user:pass@`` or a
``?token=`` never reaches a log file, whichever code logged it.
"""

from __future__ import annotations

import logging
import sys

from .urls import redact_text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def setup_logging(level: str = "INFO", log_file: str | None = None) -> None:
    """Log to ``log_file`` (appending) or stderr. Raises OSError with the file's problem."""
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger("ingest")
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False

"""Logging set-up: one handler on the "ingest" logger, and no secret in any line.

Every formatted line (message, arguments, tracebacks) goes through
:func:`ingest.sources.urls.redact_text`, so a URL with ``user:pass@`` or a
``?token=`` never reaches a log file, whichever code logged it.

Two formats: text (``time LEVEL key=value ...``, one line per event) and
JSON lines for log shippers (Loki, Elasticsearch, journald's JSON export):
``{"time", "level", "logger", "message", ...}`` plus every ``key=value`` of
the message as its own field (``event``, ``feed``, ``page`` ...).
"""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
from datetime import UTC, datetime

from ingest.sources.urls import redact_text

_FIELD = re.compile(r"""(?:^|\s)([a-z_]+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")
_RESERVED = {"time", "level", "logger", "message", "traceback"}


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message's key=value pairs become fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact_text(record.getMessage())
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": message}
        for key, value in _FIELD.findall(message):
            if key not in _RESERVED:
                if value[:1] in "'\"":
                    try:  # a %r-formatted string: its value
                        value = str(ast.literal_eval(value))
                    except (ValueError, SyntaxError):
                        value = value[1:-1]
                out.setdefault(key, value)
        if record.exc_info:
            out["traceback"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", log_file: str | None = None, fmt: str = "text") -> None:
    """Log to ``log_file`` (appending) or stderr, as text or JSON lines. Raises OSError with the file's problem."""
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    root = logging.getLogger("ingest")
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False

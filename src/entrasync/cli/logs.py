"""Where the CLI's log lines go: a file, and stderr only with ``--verbose``.

The Graph client logs every retry, 400 and delta fallback as a warning. Without a handler Python prints
warnings to stderr, between a command's output and its ``error:`` line, and during successful runs;
a script then cannot rely on "one line on stderr when it fails" (§7).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_file() -> Path | None:
    explicit = os.environ.get("ENTRASYNC_LOG_FILE")
    if explicit is not None:
        return Path(explicit) if explicit.strip() else None  # empty: no log file
    data = Path(os.environ.get("ENTRASYNC_DATA_DIR", "entrasync-data"))
    return data / "entrasync.log" if data.is_dir() else None


def configure_logging(*, verbose: bool) -> None:
    """The ``entrasync`` loggers write INFO and up to the log file (when one can be opened) and, with
    ``verbose``, to stderr; nothing reaches Python's last-resort stderr handler."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(logging.NullHandler())
    root.setLevel(logging.INFO)
    path = _log_file()
    if path is not None:
        try:
            to_file = logging.FileHandler(path, encoding="utf-8")
        except OSError:
            pass  # a read-only data folder: no log file, still no stray stderr lines
        else:
            to_file.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(to_file)
    if verbose:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(stream)
    for noisy in ("httpx", "httpcore", "msal", "urllib3", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_to_stderr() -> None:
    """Long-running processes (serve, demo while serving, worker) log to stderr as daemons do; their
    stdout holds only the one JSON ready line."""
    root = logging.getLogger()
    if not any(
        isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stderr for h in root.handlers
    ):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(stream)

"""Logging for a daemon whose stderr is a terminal or the systemd journal.

One line per event. Under systemd (``JOURNAL_STREAM`` is set) lines carry the
``<N>`` priority prefix the journal understands and no timestamp (the journal
adds its own); on a terminal they carry a timestamp and the level name.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["setup_logging"]

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}".replace("\n", f"\n<{priority}>")


def setup_logging(level: str = "info") -> None:
    """Send the ``ratelimitd`` logger to stderr at ``level``, formatted for the journal when under systemd."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("ratelimitd")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False

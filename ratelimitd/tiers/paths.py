"""TOML paths and values of a tier table, spelled the way a user finds them in the file.

``("providers", "polynode", "tiers", "growth", "heavy", "rate")`` is written
``providers.polynode.tiers.growth.heavy.rate``; a name that is not a bare TOML
key is quoted (``keys."my key"``) and a list item is indexed (``rate[1]``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

__all__ = ["format_path", "quote"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: Iterable[Any]) -> str:
    """Return the dotted TOML spelling of ``path`` (names as str, list indexes as int); "" for the root."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = part if _BARE.match(part) else json.dumps(part, ensure_ascii=False)
        text = f"{text}.{name}" if text else name
    return text


def quote(value: Any) -> str:
    """Return ``value`` as it would be written in TOML (strings in double quotes), for messages."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)

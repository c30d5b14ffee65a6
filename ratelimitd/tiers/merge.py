"""How included tier tables combine into one, remembering which file set each value.

The rules (docs/tier-tables.md, "Includes and merging"):

- Files merge in order: a file's includes first, in the order listed (each
  with its own includes before it), then the file itself; later wins.
- Tables merge key by key, recursively. Everything else replaces what an
  earlier file set at the same place.
- Three kinds of table are *records*, replaced whole, never merged: an
  endpoint (``providers.P.endpoints.E``), a bucket on a tier
  (``providers.P.tiers.T.B``) and a key (``keys.K``). Redefining a bucket thus
  never inherits a stray ``burst`` or ``algorithm`` from the preset.
- ``replace = true`` in a provider's table drops everything earlier files
  said about that provider before this file's definition applies.

Pure data in, data out: reading files and resolving includes is ``loader``'s job.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .paths import format_path, quote

__all__ = ["Origins", "merge_into"]

Path = tuple[Any, ...]


class Origins:
    """The file that last set each value of a merged table, found by the longest known prefix of its path."""

    __slots__ = ("root", "_files")

    def __init__(self, root: str) -> None:
        self.root = root
        self._files: dict[Path, str] = {}

    def set(self, path: Path, file: str) -> None:
        """Record that ``file`` set the value at ``path``."""
        self._files[path] = file

    def forget_below(self, path: Path) -> None:
        """Drop what is recorded under ``path`` (its value was replaced whole or dropped)."""
        size = len(path)
        for known in [known for known in self._files if len(known) > size and known[:size] == path]:
            del self._files[known]

    def file_of(self, path: Path) -> str:
        """Return the file that set ``path`` or its nearest recorded ancestor (the root file if none)."""
        files = self._files
        for end in range(len(path), 0, -1):
            file = files.get(path[:end])
            if file is not None:
                return file
        return self.root

    def error(self, message: str, path: Path) -> ConfigError:
        """Return a ``ConfigError`` for the value at ``path``, naming the file that set it."""
        return ConfigError(message, file=self.file_of(path), path=format_path(path) or None)


def _is_record(path: Path) -> bool:
    depth = len(path)
    if depth == 2:
        return path[0] == "keys"
    if path[0] != "providers":
        return False
    if depth == 4:
        return path[2] == "endpoints"
    if depth == 5:
        return path[2] == "tiers" and path[4] != "info"
    return False


def merge_into(target: dict[str, Any], document: dict[str, Any], file: str, origins: Origins) -> None:
    """Merge one file's parsed table into ``target`` by the rules above, recording origins.

    ``document`` must not hold ``include`` any more (the loader has taken it out).
    ``document`` is not modified, and ``target`` shares no mutable table with it.
    Raises ``ConfigError`` when a provider's ``replace`` is not a boolean.
    """
    providers = document.get("providers")
    if isinstance(providers, dict):
        for name, provider in providers.items():
            if not isinstance(provider, dict) or "replace" not in provider:
                continue
            path = ("providers", name, "replace")
            replace = provider["replace"]
            if not isinstance(replace, bool):
                raise ConfigError(
                    f"{quote(replace)} is not a boolean: write replace = true to drop what earlier files said about "
                    f"provider {quote(name)}",
                    file=file,
                    path=format_path(path),
                )
            earlier = target.get("providers")
            if replace and isinstance(earlier, dict) and name in earlier:
                del earlier[name]
                origins.forget_below(("providers", name))
    _merge_table(target, document, (), file, origins)


def _merge_table(target: dict[str, Any], table: dict[str, Any], path: Path, file: str, origins: Origins) -> None:
    for name, value in table.items():
        here = path + (name,)
        if len(here) == 3 and here[0] == "providers" and name == "replace":
            continue  # consumed by merge_into
        earlier = target.get(name)
        if isinstance(value, dict) and not _is_record(here):
            if not isinstance(earlier, dict):
                if earlier is not None:
                    origins.forget_below(here)
                earlier = target[name] = {}
            origins.set(here, file)
            _merge_table(earlier, value, here, file, origins)
        else:
            if isinstance(earlier, dict):
                origins.forget_below(here)
            target[name] = _copy(value)
            origins.set(here, file)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _copy(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value

"""Reading tier tables: a file or a text, its includes (bundled presets and other files), merged and validated.

This is the only module of ``tiers`` that reads files. ``load_file`` and
``load_text`` return a ``TierTable`` or raise ``ConfigError`` naming the file,
the TOML path and what is wrong, so that a reload can refuse a bad table and
keep the old one. Includes are resolved depth first, each file or preset merged
once (``merge`` has the rules); a file that includes itself, directly or not,
is an error.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from typing import Any

from ..errors import ConfigError
from .build import build_table
from .fields import did_you_mean, one_of_names, quote
from .merge import Origins, merge_into
from .model import TierTable

__all__ = ["PRESETS", "preset_path", "load_file", "load_text"]

# the bundled presets (ratelimitd/tiers/presets/NAME.toml), one per provider of /work/shared/seeds
PRESETS = ("houdini", "lasersell", "polynode", "struct", "surchi")


def preset_path(name: str) -> str:
    """Return the path of bundled preset ``name``, or raise ``ConfigError`` listing the presets."""
    if name not in PRESETS:
        raise ConfigError(f"{quote(name)} is not a bundled preset; the presets are {one_of_names(PRESETS)}")
    return str(resources.files(__package__).joinpath("presets", f"{name}.toml"))


def load_file(path: str | os.PathLike[str]) -> TierTable:
    """Return the tier table in the TOML file at ``path``, with its includes merged and all of it validated.

    Raises ``ConfigError`` when the file or an include cannot be read, is not
    valid TOML (the message has tomllib's line and column) or is not a valid table.
    """
    path = os.fspath(path)
    return _Loader(path).load(_read(path, path, None), os.path.realpath(path))


def load_text(text: str, source: str = "<memory>") -> TierTable:
    """Return the tier table in the TOML ``text``, as ``load_file`` would; ``source`` names it in messages.

    Relative includes are resolved against the directory of ``source`` when it
    names a file, else against the current directory.
    """
    return _Loader(source).load(text, os.path.realpath(source) if source != "<memory>" else None)


def _read(path: str, label: str, at: tuple[str, tuple[Any, ...]] | None) -> str:
    """Return the UTF-8 text of ``path``; a failure names ``label`` or, for an include, where it was asked for."""
    try:
        with open(path, "rb") as file:
            return file.read().decode("utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if at is None:
            raise ConfigError(f"cannot read the tier table: {reason}", file=label) from exc
        raise _include_error(f"cannot read the included file {quote(label)}: {reason}", at) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: byte {exc.start} cannot be decoded", file=label) from exc


def _include_error(message: str, at: tuple[str, tuple[Any, ...]]) -> ConfigError:
    file, path = at
    return ConfigError(message, file=file, path="include" + "".join(f"[{index}]" for index in path))


class _Loader:
    """One load: the merged data so far, where each value came from, and which files are in."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.merged: dict[str, Any] = {}
        self.origins = Origins(source)
        self.files: list[str] = []
        self.seen: set[str] = set()

    def load(self, text: str, identity: str | None) -> TierTable:
        base = os.path.dirname(identity) if identity is not None else os.getcwd()
        if identity is not None:
            self.seen.add(identity)
        self._add(text, self.source, base, [(identity or self.source, self.source)])
        # the root file first, then its includes in the order they were merged
        files = (self.source, *self.files[:-1])
        return build_table(self.merged, self.origins, source=self.source, files=files, presets=PRESETS)

    def _add(self, text: str, label: str, base: str, stack: list[tuple[str, str]]) -> None:
        """Merge the file ``text`` (named ``label``) after its includes; ``stack`` is the chain that led here."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", file=label) from exc
        includes = document.pop("include", [])
        if not isinstance(includes, list):
            includes = [includes] if isinstance(includes, str) else None
        if includes is None:
            raise ConfigError(
                'include must be an array of preset names and file paths, e.g. include = ["surchi", "./more.toml"]',
                file=label,
                path="include",
            )
        for index, item in enumerate(includes):
            at = (label, (index,))
            identity, child_label, child_base = self._resolve(item, base, at)
            chain = [name for _, name in stack] + [child_label]
            if any(identity == known for known, _ in stack):
                raise _include_error(f"include cycle: {' -> '.join(chain)}", at)
            if identity in self.seen:
                continue  # already merged once (a diamond, not a cycle)
            self.seen.add(identity)
            child_text = _read(child_label, child_label, at)
            self._add(child_text, child_label, child_base, stack + [(identity, child_label)])
        merge_into(self.merged, document, label, self.origins)
        self.files.append(label)

    def _resolve(self, item: Any, base: str, at: tuple[str, tuple[Any, ...]]) -> tuple[str, str, str]:
        """Return (identity, label, directory) of one include: a preset name, or a path relative to ``base``."""
        if not isinstance(item, str) or not item:
            raise _include_error(f"{quote(item)} is not a preset name or a file path", at)
        if "/" in item or item.endswith(".toml"):
            path = os.path.join(base, os.path.expanduser(item))
            identity = os.path.realpath(path)
            return identity, os.path.normpath(path), os.path.dirname(identity)
        if item not in PRESETS:
            raise _include_error(
                f"{quote(item)} is not a bundled preset{did_you_mean(item, PRESETS)}; the presets are "
                f"{one_of_names(PRESETS)} "
                f"(a file path needs a \"/\" or the \".toml\" suffix, e.g. \"./{item}.toml\")",
                at,
            )
        path = preset_path(item)
        return f"preset:{item}", path, os.path.dirname(path)

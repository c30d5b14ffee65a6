"""Shared fixtures: ``start_daemon`` runs a real ratelimitd process for end-to-end tests."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .daemon import Daemon


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """Yield a short temporary directory (Unix socket paths are limited to 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="rl-") as directory:
        yield Path(directory)


@pytest.fixture
def start_daemon(short_tmp: Path) -> Iterator[Callable[..., Daemon]]:
    """Yield a function that starts a real daemon with a given tier table; all are stopped after the test."""
    started: list[Daemon] = []

    def start(table: str, *extra: str, name: str = "d", env: dict[str, str] | None = None) -> Daemon:
        directory = short_tmp / name
        directory.mkdir(exist_ok=True)
        daemon = Daemon(directory, table, *extra, env=env)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        try:
            daemon.stop(timeout=10)
        except Exception:
            daemon.kill()

"""Fixtures for the store tests (helpers live in ``store_support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ratelimitd.store import StateStore

from .store_support import FakeClocks


@pytest.fixture
def clocks() -> FakeClocks:
    return FakeClocks()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
def open_store(state_path: Path, clocks: FakeClocks) -> Iterator[Callable[..., StateStore]]:
    """Open stores on ``state_path`` with the fake clocks; every one is closed after the test."""
    opened: list[StateStore] = []

    def opener(path: Path | None = None, **kwargs: Any) -> StateStore:
        kwargs.setdefault("clocks", clocks)
        kwargs.setdefault("lock_timeout", 0)
        store = StateStore.open(path or state_path, **kwargs)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh directory under /tmp that any user can enter (pytest's tmp_path is 0700 under root)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ratelimitd-store-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)

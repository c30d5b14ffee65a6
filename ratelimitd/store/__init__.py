"""Persistence of engine state in SQLite (via sqlite-utils): the state file, its runs and its faults.

The store holds no logic of limits: it saves and returns opaque rows of
bucket state, records each daemon run (so a restart knows whether the last
one stopped cleanly and when its last durable write was), and turns every
disk or SQLite fault into a ``StoreError`` whose message names the path and
what to do. docs/state.md is the contract with the engine and the server.
"""

from .errors import (
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreIncompatible,
    StoreLocked,
    StoreMissing,
    StoreUnsafePath,
    StoreUnwritable,
)
from .files import move_aside
from .inspect import inspect
from .recovery import PreviousRun, RecoveryInfo, SystemClocks
from .rows import BucketKey, BucketRow, Reset
from .state_store import StateStore

__all__ = [
    "StateStore",
    "BucketRow",
    "BucketKey",
    "Reset",
    "RecoveryInfo",
    "PreviousRun",
    "SystemClocks",
    "inspect",
    "move_aside",
    "StoreError",
    "StoreCorrupt",
    "StoreIncompatible",
    "StoreLocked",
    "StoreUnwritable",
    "StoreUnsafePath",
    "StoreFull",
    "StoreMissing",
]

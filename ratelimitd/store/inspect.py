"""A read-only look at a state file, for ``ratelimitctl status --state PATH`` when the daemon is down.

``inspect`` opens the file read-only (no lock taken, nothing written), so it
also works beside a running daemon, and returns plain data. The dict's shape
is documented in docs/state.md and is what ``--json`` prints; times are
engine/Unix ns as stored (each run's own timeline), the CLI formats them.
"""

from __future__ import annotations

import os
from typing import Any

from .files import probe_lock
from .recovery import PreviousRun
from .state_store import StateStore

__all__ = ["inspect"]


def inspect(path: str | os.PathLike[str], *, rows: bool = False, history: int = 10) -> dict[str, Any]:
    """Return what the state file at ``path`` knows: runs, clean flag, last flush, buckets summarised.

    ``daemon_pid`` is the pid of a daemon holding the file now (-1 when its
    pid is unknown), else None. A last run still marked "running" with no
    daemon holding the file is shown as "crashed" (what the next start
    records). ``clean`` is None while a daemon runs or when no run was ever
    recorded. ``rows=True`` adds every row with its decoded state (values
    may be ``Decimal``). Raises ``StoreMissing``, ``StoreCorrupt`` or
    ``StoreIncompatible`` like ``StateStore.open_readonly``.
    """
    real = os.path.realpath(os.fspath(path))
    daemon_pid = probe_lock(real)
    with StateStore.open_readonly(real) as store:
        runs = store.runs(history)
        notes = store.recovery_notes(history)
        report: dict[str, Any] = {
            "path": store.path,
            "daemon_pid": daemon_pid,
            "schema": store.schema(),
            "runs": [_run(run, notes.get(run.run_id), daemon_pid) for run in runs],
            "resets": [
                {
                    "owner": reset.owner,
                    "buckets": None if reset.buckets is None else list(reset.buckets),
                    "at": reset.at,
                }
                for reset in store.resets(history)
            ],
        }
        owners = store.summarise_buckets()
        report["buckets"] = {"rows": sum(entry["rows"] for entry in owners.values()), "owners": owners}
        if rows:
            report["rows"] = [
                {
                    "owner": row.owner,
                    "bucket": row.bucket,
                    "idx": row.idx,
                    "algorithm": row.algorithm,
                    "rate": row.rate,
                    "saved_at": row.saved_at,
                    "state": row.state,
                }
                for row in store.load_buckets()
            ]
    last = report["runs"][0] if report["runs"] else None
    report["last_run"] = last
    report["last_flush_at"] = last["last_flush_at"] if last else None
    report["clean"] = None if last is None or daemon_pid is not None else last["outcome"] == "clean"
    return report


def _run(run: PreviousRun, recovery: Any, daemon_pid: int | None) -> dict[str, Any]:
    outcome = run.outcome
    if outcome == "running" and daemon_pid is None:
        outcome = "crashed"
    return {
        "run_id": run.run_id,
        "pid": run.pid,
        "boot_id": run.boot_id,
        "started_at": run.started_at,
        "last_flush_at": run.last_flush_at,
        "last_flush_wall": run.last_flush_wall,
        "stopped_at": run.stopped_at,
        "outcome": outcome,
        "recovery": recovery,
    }

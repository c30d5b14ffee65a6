"""Benchmark ratelimitd beside what users would pick instead, in one run, and print one report.

    python bench/run.py            # full run: a few minutes on 2 cores
    python bench/run.py --smoke    # tiny counts, for CI: well under a minute

Starts every backend itself on Unix sockets in a temporary directory (the
transport floors, redis-server for the `limits` and PyrateLimiter anchors,
ratelimitd), runs the same client processes against each, and prints
Markdown: the main table (checks/s, p50/p99/p999 latency, server and client CPU
per check, ratio to ratelimitd), many keys, waiting, start-up, and the targets
of issue 8. Runs are interleaved (run 1 of every backend, then run 2, …) so load
from elsewhere on the machine falls on all backends alike; medians are
reported. Exit status: 0 whatever the numbers, 2 when the harness itself failed
(a started backend misbehaved, a worker crashed or overran). A backend that
cannot run here (command missing, daemon not written yet) is skipped with a note.
Set-up of the anchors: `bash bench/setup.sh`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import metadata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from backends import BACKENDS, PIPELINE_DEPTH, stop_backend  # noqa: E402
from measure import run_workers, summarise  # noqa: E402
from procs import HarnessError, spawn, stop, stop_all  # noqa: E402
from report import rows_of, sections, table, targets  # noqa: E402
from sections import measure_many_keys, measure_startup, measure_waiting  # noqa: E402
from servers import Unavailable, stop_server  # noqa: E402

# PyrateLimiter SQLite counts its window with an index range scan, so it slows down as its table
# fills (~6,000 checks/s at 2,000 per client, ~4,500 at 5,000, ~2,500 at 20,000 here): fewer
# checks would flatter it, so it does the full count, but in one run (~35 s; its throughput varies
# by a few % between runs, far less than the others') with a longer time limit.
FULL = {
    "n": 20_000, "n_unloaded": 5_000, "max_seconds": 8.0, "runs": 3, "warmup": 300,
    "sqlite_runs": 1, "sqlite_max_seconds": 60.0,
    "many_keys": 100_000, "many_grants": 2, "many_runs": 3,
    "wait_seconds": 3.0, "wait_runs": 3, "startup_keys": 100_000, "startup_runs": 3,
}  # fmt: skip
SMOKE = {"n": 300, "max_seconds": 3.0, "runs": 1, "warmup": 20, "many_keys": 2_000, "many_grants": 2, "many_runs": 1,
         "wait_seconds": 0.3, "wait_runs": 1, "startup_keys": 2_000, "startup_runs": 1}  # fmt: skip
SECTIONS = ("main", "many", "waiting", "startup")
MANY_KEYS_ALGORITHMS = ("sliding-log", "sliding-window")


def log(message: str) -> None:
    """Print a progress line on stderr (the report goes to stdout)."""
    print(message, file=sys.stderr, flush=True)


def _versions() -> str:
    """Return one line naming the versions of everything measured."""
    parts = [f"Python {platform.python_version()}"]
    for dist in ("trio", "cbor2", "redis", "hiredis", "limits", "pyrate-limiter"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} missing")
    exe = shutil.which("redis-server")
    if exe:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.split()
        parts.append("redis-server " + next((w[2:] for w in out if w.startswith("v=")), "?"))
    else:
        parts.append("redis-server missing")
    return ", ".join(parts)


def _select(only: str | None, skip: str | None):
    """Return the backends chosen by ``--only``/``--skip`` (comma-separated ids or id prefixes)."""

    def match(b, spec):
        return any(b.id == s or b.id.startswith(s) for s in spec.split(",") if s)

    chosen = [b for b in BACKENDS if only is None or match(b, only)]
    return [b for b in chosen if skip is None or not match(b, skip)]


def _profile_start(directory: str | None, server, name: str):
    """Start ``py-spy record`` on a ratelimitd server into ``directory`` (collapsed stacks); None if not asked."""
    if not directory or server.proc is None or not server.name.startswith("ratelimitd"):
        return None
    exe = shutil.which("py-spy")
    if exe is None:
        log("--profile: py-spy is not installed (pip install py-spy); not profiling")
        return None
    os.makedirs(directory, exist_ok=True)
    out = os.path.join(directory, f"{name}.txt")
    return spawn([exe, "record", "--pid", str(server.pid), "--rate", "250", "--format", "raw", "--nonblocking",
                  "--output", out], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _profile_stop(profiler) -> None:
    """Make ``py-spy record`` write its file and end (it does both on SIGINT)."""
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        stop(profiler)


def run_main(backends, size: dict, tmp: str, samples: dict, notes: dict, failures: list, profile: str | None = None) -> None:
    """Measure every backend ``size['runs']`` times, interleaved, filling ``samples`` and ``notes``."""
    for run in range(size["runs"]):
        for b in backends:
            if notes.get(b.id, "").startswith("FAILED"):
                continue
            if any(s.cut for s in samples.get(b.id, ())):
                continue  # it hit the time limit once: more runs would only add that limit again
            max_seconds = size["max_seconds"]
            if b.id == "pyrate-sqlite":
                if run >= size.get("sqlite_runs", size["runs"]):
                    continue
                max_seconds = size.get("sqlite_max_seconds", max_seconds)
            n = size["n"]
            if b.id == "pyrate-sqlite" and size.get("n_sqlite"):
                n = size["n_sqlite"]
            elif b.group == "unloaded" and size.get("n_unloaded"):
                n = size["n_unloaded"]
            try:
                server = b.start(tmp)
            except Unavailable as exc:  # tried again next round: the daemon may be mid-edit in the tree
                if notes.get(b.id) != str(exc):
                    log(f"skip {b.id}: {exc}")
                notes[b.id] = str(exc)
                continue
            try:
                cfgs = []
                for i in range(b.clients):
                    cfg = b.worker(server) | {"n": n, "warmup": size["warmup"], "max_seconds": max_seconds,
                                              "out": os.path.join(tmp, f"lat-{b.id}-{i}.bin")}  # fmt: skip
                    cfgs.append(cfg)
                profiler = _profile_start(profile, server, f"{b.id}-run{run + 1}")
                try:
                    results, timings = run_workers(cfgs, server.pid, timeout=max_seconds + 60)
                finally:
                    _profile_stop(profiler)
                sample = summarise(results, timings)
                sample.run = run
            except HarnessError as exc:
                notes[b.id] = f"FAILED: {exc}"
                failures.append(f"{b.id}: {exc}")
                log(f"FAILED {b.id}: {exc}")
                continue
            finally:
                stop_server(server)
                stop_backend(server)
            if sample.errors:
                failures.append(f"{b.id}: {sample.errors} error replies (server log: {server.log})")
            samples.setdefault(b.id, []).append(sample)
            log(f"run {run + 1}/{size['runs']} {b.id}: {sample.throughput:,.0f} checks/s, p50 {sample.p50:,.0f} µs, "
                f"p99 {sample.p99:,.0f} µs" + (f", {sample.denied} denied" if sample.denied else "")
                + (f", stopped at the {max_seconds:g} s limit after {sample.checks:,} checks" if sample.cut else ""))  # fmt: skip


def _section(failures: list[str], measure, *args) -> dict:
    """Run one side measurement; a harness failure in it is recorded and the others still run."""
    try:
        return measure(*args)
    except HarnessError as exc:
        failures.append(str(exc))
        log(f"FAILED: {exc}")
        return {"note": f"FAILED: {exc}"}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark as the command line asks and print the report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, one run each (CI)")
    parser.add_argument("--runs", type=int, help="runs per configuration (default 3, smoke 1)")
    parser.add_argument("-n", type=int, help="checks per client process in the main table (default 20,000)")
    parser.add_argument("--sqlite-n", type=int, help="checks per client for PyrateLimiter SQLite only (default: as -n; "
                        "it slows down as its table fills, so fewer checks flatter it)")
    parser.add_argument("--only", help="comma-separated backend ids (or prefixes) of the main table, e.g. rl-,floor-")
    parser.add_argument("--skip", help="comma-separated backend ids (or prefixes) to leave out")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"which parts to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--profile", metavar="DIR", help="record each ratelimitd run with py-spy (collapsed stacks) into DIR")
    parser.add_argument("--json", help="also write every sample and section result to this file")
    parser.add_argument("--list", action="store_true", help="list the backend ids and exit")
    args = parser.parse_args(argv)
    if args.list:
        for b in BACKENDS:
            print(f"{b.id:28} {b.group:10} {b.label}")
        return 0
    size = dict(SMOKE if args.smoke else FULL)
    if args.runs:
        size.update(runs=args.runs, many_runs=args.runs, wait_runs=args.runs, startup_runs=args.runs, sqlite_runs=args.runs)
    if args.n:
        size["n"] = args.n
        size["n_unloaded"] = min(size.get("n_unloaded", args.n), args.n)
    if args.sqlite_n:
        size["n_sqlite"] = args.sqlite_n
    wanted = set(args.sections.split(","))
    unknown = wanted - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    tmp = tempfile.mkdtemp(prefix="rlbench-")
    samples: dict = {}
    notes: dict = {}
    failures: list[str] = []
    many: list[dict] = []
    waiting = startup = None
    started = time.monotonic()
    load0 = os.getloadavg()
    backends = _select(args.only, args.skip)
    try:
        if "main" in wanted:
            run_main(backends, size, tmp, samples, notes, failures, args.profile)
        if "many" in wanted:
            for algorithm in MANY_KEYS_ALGORITHMS:
                result = _section(failures, measure_many_keys, tmp, size["many_keys"], size["many_grants"],
                                  size["many_runs"], algorithm, log)  # fmt: skip
                many.append({"algorithm": algorithm} | result)
        if "waiting" in wanted:
            waiting = _section(failures, measure_waiting, tmp, size["wait_seconds"], size["wait_runs"], log)
        if "startup" in wanted:
            startup = _section(failures, measure_startup, tmp, size["startup_keys"], size["startup_runs"], log)
    except KeyboardInterrupt:
        log("interrupted: stopping every process this run started")
        return 130
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    rows = rows_of(backends, samples)
    fmt = {"clients": 4, "n": size["n"], "depth": PIPELINE_DEPTH, "max_seconds": size["max_seconds"], "runs": size["runs"],
           "n_unloaded": size.get("n_unloaded", size["n"]),
           "checks": {"one": 4 * size["n"], "pipelined": 4 * size["n"], "unloaded": size.get("n_unloaded", size["n"])}}  # fmt: skip
    out = [
        f"## ratelimitd benchmark ({'smoke' if args.smoke else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"{os.cpu_count()} cores, load average {load0[0]:.2f} at the start and {os.getloadavg()[0]:.2f} at the end; "
        f"medians of {size['runs']} interleaved run(s); {time.monotonic() - started:.0f} s in all.  ",
        _versions() + ".",
        "",
    ]
    for group in ("one", "pipelined", "unloaded"):
        text = table(group, backends, rows, notes, fmt)
        if text:
            out += [text]
    side = sections(many, waiting, startup)
    if side:
        out.append(side)
    out.append(targets(rows, many, waiting))
    if failures:
        out += ["### Harness failures", ""] + [f"- {f}" for f in failures] + [""]
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": size, "samples": {k: [asdict(s) for s in v] for k, v in samples.items()}, "notes": notes,
                       "many_keys": many, "waiting": waiting, "startup": startup, "failures": failures}, f, indent=1)  # fmt: skip
    return 2 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()

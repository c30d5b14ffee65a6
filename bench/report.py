"""Turn measured samples into the printed report: the tables, the side sections, the targets of issue 8.

Nothing here measures; every function takes what ``run.py`` collected and
returns Markdown text, so the output can be pasted into bench/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends import REFERENCE, Backend
from measure import Sample, median

__all__ = ["Row", "rows_of", "reference_of", "paired_ratio", "table", "sections", "targets"]

GROUP_TITLES = {
    "one": "One check at a time: {clients} client processes × {n:,} checks each, one shared key, never denied",
    "pipelined": "Pipelined: {clients} clients, {depth} requests in flight each (latency is per batch of {depth})",
    "unloaded": "Unloaded: 1 client × {n_unloaded:,} checks, one at a time",
}


@dataclass
class Row:
    """The medians of one backend's runs."""

    backend: Backend
    runs: int
    checks: int
    throughput: float
    p50: float
    p99: float
    p999: float
    client_cpu: float
    server_cpu: float | None
    spread: float  # (max - min) / median of the runs' throughputs
    denied: int
    errors: int
    samples: list[Sample]


def rows_of(backends: list[Backend], samples: dict[str, list[Sample]]) -> dict[str, Row]:
    """Return the median row of every backend that has at least one sample."""
    rows = {}
    for b in backends:
        got = samples.get(b.id) or []
        if not got:
            continue
        tput = [s.throughput for s in got]
        mid = median(tput)
        rows[b.id] = Row(
            backend=b,
            runs=len(got),
            checks=got[0].checks,
            throughput=mid,
            p50=median(s.p50 for s in got),
            p99=median(s.p99 for s in got),
            p999=median(s.p999 for s in got),
            client_cpu=median(s.client_cpu for s in got),
            server_cpu=median(s.server_cpu for s in got),
            spread=(max(tput) - min(tput)) / mid if mid else 0.0,
            denied=sum(s.denied for s in got),
            errors=sum(s.errors for s in got),
            samples=list(got),
        )
    return rows


def reference_of(group: str, rows: dict[str, Row]) -> Row | None:
    """Return the row a group's ratios are taken to (the first of ``REFERENCE[group]`` measured)."""
    for candidate in REFERENCE[group]:
        if candidate in rows:
            return rows[candidate]
    return None


def paired_ratio(num: Row, dens: list[Row]) -> tuple[float, list[float]]:
    """Return the median over rounds of num's checks/s ÷ the best of ``dens`` in the same round, and each round's.

    Backends of one round run minutes apart at most, so load from elsewhere on the
    machine affects both sides of a round's ratio alike; a round missing either
    side is left out. Falls back to the ratio of medians when no round has both.
    """
    ratios = []
    for s in num.samples:
        same = [d.throughput for den in dens for d in den.samples if d.run == s.run]
        if same:
            ratios.append(s.throughput / max(same))
    if not ratios:
        return num.throughput / max(d.throughput for d in dens), []
    return median(ratios), ratios


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(group: str, backends: list[Backend], rows: dict[str, Row], notes: dict[str, str], fmt: dict) -> str:
    """Return the Markdown table of ``group``: measured rows, then the rows skipped and why."""
    members = [b for b in backends if b.group == group]
    if not members:
        return ""
    ref = reference_of(group, rows)
    lines = [
        "### " + GROUP_TITLES[group].format(**fmt),
        "",
        f"Ratios: this row's checks/s ÷ those of **{ref.backend.label}** in the same round, median over rounds."
        if ref
        else "No ratelimitd row measured: no ratios.",
        "",
        "| backend | checks/s | ÷ ratelimitd | p50 µs | p99 µs | p999 µs | server CPU µs/check | client CPU µs/check | spread |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in members:
        row = rows.get(b.id)
        if row is None:
            why = notes.get(b.id, "not selected")
            lines.append(f"| {b.label} | skipped: {why} | | | | | | | |")
            continue
        ratio = f"{paired_ratio(row, [ref])[0]:.2f}×" if ref else "–"
        server = _num(row.server_cpu, 1)
        if b.server_what and row.server_cpu is not None:
            server += f" ({b.server_what})"
        elif b.server_what:
            server = b.server_what
        flags = []
        if row.denied:
            flags.append(f"{row.denied} denied!")
        if row.errors:
            flags.append(f"{row.errors} errors!")
        if row.runs != fmt.get("runs", row.runs):
            flags.append(f"{row.runs} run{'s' if row.runs != 1 else ''}")
        if any(s.cut for s in row.samples):
            flags.append(f"stopped at the {fmt['max_seconds']:g} s limit: {row.checks:,} checks")
        elif row.checks != fmt.get("checks", {}).get(b.group, row.checks):
            flags.append(f"{row.checks:,} checks/run")
        label = b.label + (f" ({'; '.join(flags)})" if flags else "")
        lines.append(
            f"| {label} | {_num(row.throughput)} | {ratio} | {_num(row.p50)} | {_num(row.p99)} | {_num(row.p999)} "
            f"| {server} | {_num(row.client_cpu, 1)} | ±{row.spread * 50:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def sections(many: list[dict], waiting: dict | None, startup: dict | None) -> str:
    """Return the Markdown of the side measurements (many keys, waiting, start-up)."""
    out = []
    if many:
        out += ["### Many keys: distinct keys, a few grants each (4 clients, thin raw client)", ""]
        out += ["| algorithm | keys × grants | checks/s | p50 µs | p99 µs | server CPU µs/check | RSS before → after | RSS per bucket | table load |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for m in many:
            if "note" in m:
                out.append(f"| {m.get('algorithm', '?')} | skipped: {m['note']} | | | | | | | |")
                continue
            out.append(
                f"| {m['algorithm']} `{m['rate']}` | {m['keys']:,} × {m['grants']} | {_num(m['throughput'])} | {_num(m['p50'])} "
                f"| {_num(m['p99'])} | {_num(m['server_cpu'], 1)} | {m['rss_before'] / 2**20:,.1f} → {m['rss_after'] / 2**20:,.1f} MiB "
                f"| {m['bytes_per_bucket']:,.0f} B | {m['start_s']:.2f} s |"
            )
        out.append("")
    if waiting is not None:
        out += ["### Waiting: 64 clients blocked on one key that frees a slot every millisecond", ""]
        if "note" in waiting:
            out.append(f"skipped: {waiting['note']}")
        else:
            out.append(
                f"{waiting['waiters']} waiters ({waiting['client']}, 4 processes × 16 threads), rate `{waiting['rate']}` "
                f"margin 0: {_num(waiting['grants_per_s'])} grants/s (ideal 1,000) over {waiting['grants']:,} grants; "
                f"lateness of a grant after its slot freed: p50 {_num(waiting['p50'])} µs, p99 {_num(waiting['p99'])} µs, "
                f"p999 {_num(waiting['p999'])} µs, max {_num(waiting['max'])} µs."
            )
        out.append("")
    if startup is not None:
        out += ["### Start-up with buckets to restore", ""]
        if "note" in startup:
            out.append(startup["note"])
        else:
            out.append(
                f"{startup['keys']:,} buckets restored in a start-up of {startup['start_s']:.2f} s "
                f"(the same table with no state: {startup['empty_start_s']:.2f} s)."
            )
        out.append("")
    return "\n".join(out)


def _ratio_target(text, rows, num_id, den_ids, need, num_group="one"):
    """Return a target line comparing the reference of ``num_group`` (or row ``num_id``) with the best of ``den_ids``."""
    num = rows.get(num_id) if num_id else reference_of(num_group, rows)
    dens = [rows[d] for d in den_ids if d in rows]
    if num is None or not dens:
        missing = "ratelimitd" if num is None else " / ".join(den_ids)
        return (text, f"not measured ({missing} missing)", "–")
    den = max(dens, key=lambda r: r.throughput)
    ratio, rounds = paired_ratio(num, dens)
    each = f"; rounds {' / '.join(f'{r:.2f}' for r in rounds)}" if len(rounds) > 1 else ""
    measured = f"{ratio:.2f}× ({num.throughput:,.0f} vs {den.backend.label} {den.throughput:,.0f} checks/s{each})"
    return (text, measured, "met" if ratio >= need else "NOT met")


def targets(rows: dict[str, Row], many: list[dict], waiting: dict | None) -> str:
    """Return the Markdown table of issue 8's targets with the measured values and whether each is met."""
    lines = []
    lines.append(_ratio_target("one-at-a-time sliding log ≥ 1.25× the best peer (limits + Redis, fixed or moving)",
                               rows, None, ["limits-fixed", "limits-moving"], 1.25))  # fmt: skip
    lines.append(_ratio_target("one-at-a-time sliding log ≥ the naive Trio floor (`SocketStream`)",
                               rows, None, ["floor-trio-stream"], 1.0))  # fmt: skip
    lines.append(_ratio_target("one-at-a-time sliding log ≥ 10× PyrateLimiter SQLite",
                               rows, None, ["pyrate-sqlite"], 10.0))  # fmt: skip
    lines.append(_ratio_target("pipelined ≥ 70 % of the pipelined Trio floor",
                               rows, "rl-log-pipe", ["floor-trio-stream-pipe"], 0.70))  # fmt: skip
    unloaded = reference_of("unloaded", rows)
    if unloaded is None:
        lines.append(("unloaded p99 of `acquire` < 1 ms", "not measured", "–"))
    else:
        lines.append(("unloaded p99 of `acquire` < 1 ms", f"{unloaded.p99:,.0f} µs ({unloaded.backend.label})",
                      "met" if unloaded.p99 < 1000 else "NOT met"))  # fmt: skip
    if not waiting or "note" in waiting:
        lines.append(("a freed slot is granted within 1 ms (p99)", f"not measured ({(waiting or {}).get('note', 'skipped')})", "–"))
    else:
        lines.append(("a freed slot is granted within 1 ms (p99)", f"p99 lateness {waiting['p99']:,.0f} µs",
                      "met" if waiting["p99"] < 1000 else "NOT met"))  # fmt: skip
    by_alg = {m.get("algorithm"): m for m in many}
    swc = by_alg.get("sliding-window")
    if swc is None or "note" in swc:
        lines.append(("< 1 KiB per idle key, sliding-window counter", f"not measured ({(swc or {}).get('note', 'skipped')})", "–"))
    else:
        lines.append(("< 1 KiB per idle key, sliding-window counter", f"{swc['bytes_per_bucket']:,.0f} B per bucket",
                      "met" if swc["bytes_per_bucket"] < 1024 else "NOT met"))  # fmt: skip
    log = by_alg.get("sliding-log")
    if log is None or "note" in log:
        lines.append(("sliding log memory bounded and documented", "not measured", "–"))
    else:
        lines.append(("sliding log memory bounded and documented",
                      f"{log['bytes_per_bucket']:,.0f} B per bucket holding {log['grants']} entries", "see daemon docs"))  # fmt: skip
    lines.append(_ratio_target("`strict` durability ≥ 50 % of in-memory throughput",
                               rows, "rl-log-strict", ["rl-log"], 0.50))  # fmt: skip
    out = ["### Targets of issue 8 (measured in this run)", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    out += [f"| {t} | {m} | {v} |" for t, m, v in lines]
    return "\n".join(out) + "\n"

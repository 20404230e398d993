"""The benchmark's one table: every figure beside its limit, the ratio and issue 16's target."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    database: str
    figure: str
    value: float
    unit: str
    limit: float | None
    limit_name: str
    target: str
    met: bool | None
    missed_by: str


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = (
        f"{value:,.0f}"
        if abs(value) >= 100
        else f"{value:,.1f}"
        if abs(value) >= 10
        else f"{value:.2f}"
    )
    return f"{text} {unit}".strip()


def _at_least(
    db: str, figure: str, value: float, unit: str, limit: float, name: str, times: float
) -> Row:
    ratio = value / limit if limit else math.nan
    met = ratio >= times
    return Row(
        db,
        figure,
        value,
        unit,
        limit,
        name,
        f"≥ {times:g}× {name}",
        met,
        "" if met else f"{times / ratio:.1f}× short" if ratio else "no data",
    )


def _at_most(db: str, figure: str, value: float, bound: float) -> Row:
    met = value <= bound
    return Row(
        db,
        figure,
        value,
        "ms",
        None,
        "",
        f"≤ {bound:g} ms",
        met,
        "" if met else f"+{value - bound:.1f} ms",
    )


def _info(
    db: str, figure: str, value: float, unit: str, limit: float | None = None, name: str = ""
) -> Row:
    return Row(db, figure, value, unit, limit, name, "", None, "")


def _submits(db: str, r: dict[str, Any]) -> list[Row]:
    t, lim = r["throughput"], r["limits"]
    limit_name = "pgbench -M prepared" if db == "postgresql" else "raw sqlite3, 1 writer"
    rows = []
    for c in (1, 8, 32):
        m = t[f"submit{c}"]
        name = f"submit c={c} (rps)"
        if c == 32 and db == "postgresql":
            rows.append(_at_least(db, name, m["rps"], "rps", lim[f"submit{c}"], limit_name, 0.5))
        else:
            rows.append(_info(db, name, m["rps"], "rps", lim[f"submit{c}"], limit_name))
        rows.append(_pair(db, f"submit c={c} p50 / p99", m))
    base = t["submit8"]["rps"]
    rows.append(_at_least(db, "replay c=8 (rps)", t["replay"]["rps"], "rps", base, "submit c=8", 2))
    for read, label in (("balance", "balance/info"), ("execution", "run/execution finished")):
        rows.append(
            _at_least(db, f"{label} c=8 (rps)", t[read]["rps"], "rps", base, "submit c=8", 3)
        )
        rows.append(
            _info(db, f"{label} vs its queries", t[read]["rps"], "rps", lim[read], "raw queries")
        )
    return rows


def _pair(db: str, figure: str, q: dict[str, float]) -> Row:
    """An information row showing ``p50 / p99 ms``."""
    return _info(db, figure, q["p50"], f"/ {q['p99']:.1f} ms")


def _latencies(db: str, r: dict[str, Any]) -> list[Row]:
    s, d = r["scale"], r["dispatch"]
    n = r["counts"]["runs_big"]
    return [
        _at_most(db, f"run/list p99 at {n:,} runs", s["list"]["p99"], 20),
        _at_most(db, f"queued run/execution p99 at {n:,} runs", s["queued"]["p99"], 20),
        _at_most(db, "dispatch p50 idle (submit sent → running)", d["idle"]["dispatch"]["p50"], 5),
        _at_most(db, "dispatch p99 idle (submit sent → running)", d["idle"]["dispatch"]["p99"], 25),
        _pair(db, "dispatch p50 / p99 under 10 submits/s", d["loaded"]["dispatch"]),
        _at_most(db, "end-to-end p50 trivial graph", d["idle"]["end_to_end"]["p50"], 20),
        _pair(db, "event stream p50 / p99", d["idle"]["events"]),
    ]


def _worker(db: str, r: dict[str, Any]) -> list[Row]:
    drain, rss = r["drain"], r["rss"]
    accept = r["throughput"]["submit32"]["rps"]
    growth = (rss["after"] - rss["before"]) / rss["before"]
    flat = abs(growth) <= 0.10
    return [
        _at_least(
            db,
            "worker drain, 1 process (runs/s)",
            drain["rps"],
            "runs/s",
            accept,
            "submit accept c=32",
            1,
        ),
        _info(
            db,
            "worker drain incl. its start-up (runs/s)",
            drain["rps_from_start"],
            f"runs/s (start-up {drain['startup']:.1f} s)",
        ),
        _info(db, "worker CPU per drained run", drain["cpu_ms_per_run"], "ms"),
        _info(db, "runs in flight at --concurrency 64 (max)", drain["in_flight"], "runs"),
        Row(
            db,
            f"server RSS across {rss['submits']:,} submits",
            rss["after"],
            "MiB",
            rss["before"],
            "RSS before",
            "± 10 %",
            flat,
            "" if flat else f"{growth:+.0%}",
        ),
        _info(db, "server CPU per submit", r["server_cpu_ms_per_submit"], "ms"),
        _info(
            db,
            "load generator CPU (max cores busy)",
            max(m["loadgen_cores"] for m in r["throughput"].values()),
            "cores",
        ),
    ]


def rows(db: str, results: dict[str, Any]) -> list[Row]:
    if "limits" not in results:  # --only drain
        return _worker(db, results)
    return _submits(db, results) + _latencies(db, results) + _worker(db, results)


def markdown(all_rows: list[Row]) -> str:
    lines = [
        "| database | figure | value | limit / baseline | ratio | target | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in all_rows:
        ratio = f"{row.value / row.limit:.2f}×" if row.limit else ""
        limit = f"{_fmt(row.limit)} ({row.limit_name})" if row.limit is not None else ""
        status = "" if row.met is None else "met" if row.met else f"missed by {row.missed_by}"
        lines.append(
            f"| {row.database} | {row.figure} | {_fmt(row.value, row.unit)} | {limit} | {ratio} | {row.target} | {status} |"
        )
    return "\n".join(lines)

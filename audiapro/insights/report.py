"""The insights of a tenant and a span of local days, as data, markdown (Prefect artifact) and rows.

The markdown uses mermaid blocks (``xychart-beta`` bar chart of calls per hour, ``pie`` of the
dispositions): Prefect's UI renders them itself, offline, with the mermaid bundle it ships (see
README "Insights"; a browser test guards it). Everything is read from the stored tables, so the
report shows exactly what SQL users see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

from audiapro.warehouse.insights import list_alerts, read_breakdowns, read_callbacks, read_daily_kpis

if TYPE_CHECKING:
    import sqlalchemy as sa

#: KPIs summed over a span (ASR and ACD are recomputed from the sums).
SUMMED: Final = ("calls", "inbound", "outbound", "internal", "external", "answered", "missed", "talk_s",
                 "after_hours_external", "international", "callbacks_open")  # fmt: skip
#: KPIs taken as the maximum over a span.
PEAKS: Final = ("peak_concurrent", "peak_concurrent_outbound")
TOP_EXTENSIONS: Final = 10
WORKLIST_ROWS: Final = 50
#: Week-over-week lines: label, KPI key, how to show it.
COMPARED: Final = (
    ("Calls", "calls", "{:.0f}"),
    ("Answered", "answered", "{:.0f}"),
    ("Missed (inbound)", "missed", "{:.0f}"),
    ("ASR %", "asr", "{:.1f}"),
    ("ACD (s)", "acd_s", "{:.0f}"),
    ("Talk minutes", "talk_min", "{:.0f}"),
    ("Peak concurrent calls", "peak_concurrent", "{:.0f}"),
    ("International calls", "international", "{:.0f}"),
)


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The KPIs of several stored days together (ASR, ACD recomputed; peaks as maxima)."""
    sums: dict[str, Any] = {name: sum(int(row[name]) for row in rows) for name in SUMMED}
    sums.update({name: max((int(row[name]) for row in rows), default=0) for name in PEAKS})
    sums["asr"] = 100.0 * sums["answered"] / sums["calls"] if sums["calls"] else None
    sums["acd_s"] = sums["talk_s"] / sums["answered"] if sums["answered"] else None
    sums["talk_min"] = sums["talk_s"] / 60.0
    sums["days"] = len(rows)
    return sums


@dataclass
class Report:
    """What the report shows for a tenant and the local days ``first..last``."""

    tenant: str
    first: date
    last: date
    kpis: dict[str, Any]
    previous: dict[str, Any]
    per_hour: list[int]
    dispositions: dict[str, int]
    extensions: list[dict[str, Any]]
    worklist: list[dict[str, Any]]
    repeat_callers: list[dict[str, Any]]
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def span(self) -> str:
        """``2026-03-02`` or ``2026-03-02..2026-03-08``."""
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


def _summed(rows: list[dict[str, Any]], *fields: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(row["key"], {"key": row["key"], **{f: 0 for f in fields}, "rings": []})
        for name in fields:
            entry[name] += int(row[name])
        if row.get("avg_ring_s") is not None:
            entry["rings"].append((float(row["avg_ring_s"]), int(row["answered"])))
    return out


def build_report(engine: sa.Engine, tenant: str, first: date, last: date) -> Report:
    """Read the stored insights of ``first..last`` and the same span a week earlier."""
    week = timedelta(days=7)
    kpis = totals(read_daily_kpis(engine, tenant, first, last))
    previous = totals(read_daily_kpis(engine, tenant, first - week, last - week))
    hours = _summed(read_breakdowns(engine, tenant, first, last, "hour"), "calls")
    dispositions = _summed(read_breakdowns(engine, tenant, first, last, "disposition"), "calls")
    ext = _summed(
        read_breakdowns(engine, tenant, first, last, "extension"), "calls", "answered", "missed", "talk_s"
    )
    for entry in ext.values():
        weight = sum(n for _, n in entry["rings"])
        ring = sum(r * n for r, n in entry["rings"]) / weight if weight else None
        entry["avg_ring_s"] = None if ring is None else round(ring, 1)
        entry["talk_min"] = round(entry.pop("talk_s") / 60.0, 1)
        entry.pop("rings")
    top = sorted(ext.values(), key=lambda e: (-e["calls"], e["key"]))[:TOP_EXTENSIONS]
    repeat = read_breakdowns(engine, tenant, last, last, "repeat_caller")
    return Report(
        tenant=tenant,
        first=first,
        last=last,
        kpis=kpis,
        previous=previous,
        per_hour=[int(hours.get(f"{h:02d}", {"calls": 0})["calls"]) for h in range(24)],
        dispositions={k: int(v["calls"]) for k, v in sorted(dispositions.items())},
        extensions=[{"extension": e.pop("key"), **e} for e in top],
        worklist=read_callbacks(engine, tenant, first, last)[:WORKLIST_ROWS],
        repeat_callers=sorted(repeat, key=lambda r: (-r["calls"], r["key"])),
        alerts=_alerts_of(engine, tenant, first, last),
    )


def _alerts_of(engine: sa.Engine, tenant: str, first: date, last: date) -> list[dict[str, Any]]:
    """Alerts whose window starts in the span (UTC dates, a day of slack for western zones)."""
    stored = list_alerts(engine, tenant=tenant, include_acknowledged=True)
    return [a for a in stored if first <= a["window_start"].date() <= last + timedelta(days=1)]


def _change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return ""
    if before == 0:
        return "new" if now else "="
    change = round(100.0 * (now - before) / before)
    return f"{change:+d} %" if change else "="


def week_over_week(report: Report) -> list[dict[str, str]]:
    """Rows ``metric, this span, a week earlier, change`` (empty cells where a value is missing)."""
    rows = []
    for label, key, fmt in COMPARED:
        now, before = report.kpis.get(key), report.previous.get(key) if report.previous["days"] else None
        rows.append(
            {
                "metric": label,
                "now": "" if now is None else fmt.format(now),
                "week_before": "" if before is None else fmt.format(before),
                "change": _change(now, before),
            }
        )
    return rows


def _mermaid_hours(per_hour: list[int]) -> str:
    top = max(per_hour, default=0)
    axis = ", ".join(f'"{h:02d}"' for h in range(24))
    return (
        "```mermaid\nxychart-beta\n"
        '    title "Calls per hour (PBX local time)"\n'
        f"    x-axis [{axis}]\n"
        f'    y-axis "Calls" 0 --> {max(top, 1)}\n'
        f"    bar [{', '.join(str(n) for n in per_hour)}]\n```"
    )


def _mermaid_pie(dispositions: dict[str, int]) -> str:
    slices = "\n".join(f'    "{name}" : {count}' for name, count in dispositions.items() if count)
    return f"```mermaid\npie showData title Dispositions\n{slices}\n```"


def _fmt(value: Any, pattern: str = "{:.1f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def markdown(report: Report) -> str:
    """The report as markdown for a Prefect artifact (mermaid charts, tables)."""
    k = report.kpis
    lines = [
        f"# Calls of {report.tenant}: {report.span}",
        "",
        f"**{k['calls']} calls** ({k['inbound']} in, {k['outbound']} out, {k['internal']} internal, "
        f"{k['external']} trunk to trunk) · **ASR {_fmt(k['asr'])} %** · "
        f"**ACD {_fmt(k['acd_s'], '{:.0f}')} s** · "
        f"{k['missed']} missed · {k['talk_min']:.0f} talk minutes · peak {k['peak_concurrent']} concurrent · "
        f"{k['callbacks_open']} to call back",
        "",
        "## Calls per hour",
        "",
        _mermaid_hours(report.per_hour),
        "",
        "## Dispositions",
        "",
        _mermaid_pie(report.dispositions) if any(report.dispositions.values()) else "_no calls_",
        "",
        "## Week over week",
        "",
        "| Metric | This span | A week before | Change |",
        "|---|---:|---:|---:|",
        *(
            f"| {r['metric']} | {r['now']} | {r['week_before']} | {r['change']} |"
            for r in week_over_week(report)
        ),
        "",
        "## Toll-fraud alerts",
        "",
    ]
    if report.alerts:
        lines += [
            "| Id | Severity | Rule | Subject | Calls | From (UTC) | Acknowledged |",
            "|---|---|---|---|---:|---|---|",
        ]
        lines += [
            f"| {a['id']} | {a['severity']} | {a['rule']} | {a['subject']} | {a['calls']} | "
            f"{a['window_start']:%Y-%m-%d %H:%M} | {'yes' if a['acknowledged_at'] else 'no'} |"
            for a in report.alerts
        ]
    else:
        lines.append("_none_")
    lines += ["", "Worklist and top extensions: the table artifacts of this run."]
    return "\n".join(lines)


def worklist_rows(report: Report) -> list[dict[str, Any]]:
    """The callback worklist as table rows (oldest first)."""
    return [
        {
            "number": row["number"],
            "missed_calls": row["missed_calls"],
            "first_missed_utc": f"{row['first_missed_at']:%Y-%m-%d %H:%M}",
            "last_missed_utc": f"{row['last_missed_at']:%Y-%m-%d %H:%M}",
            "day": str(row["day"]),
        }
        for row in report.worklist
    ]

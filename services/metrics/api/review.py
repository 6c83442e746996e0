"""The management-review page of one process over one period: HTML with inline SVG charts.

Written for ISO 9001 management reviews (9.1.2 customer satisfaction, 9.1.3 analysis and
evaluation) and ITIL service reviews, printable on A4 as it is (print CSS, no script). Every
figure carries `data-figure` (what it is) and `data-value` (the number the JSON reports give),
so the page can be checked against `/v1/reports/...` by a machine as well as read by people.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from metrics.api.svg import Bar, Series, bar_chart, column_chart, line_chart
from metrics.domain.reports import (
    LateHandoff,
    MilestoneFigures,
    ReportItem,
    ReviewData,
    StandardInForce,
    zone,
)
from shared.contracts import ClockName

DASH = "\N{EN DASH}"
"""What an empty figure shows."""
MILESTONES = (ClockName.RESPONSE.value, ClockName.RESOLUTION.value, ClockName.DELIVERY.value)

STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222;
       line-height: 1.35; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 1.8rem; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #176117; } .ko { color: #a40000; font-weight: 600; }
svg.chart { max-width: 100%; height: auto; }
svg .response { stroke: #1f5fa8; fill: #1f5fa8; }
svg .resolution { stroke: #e07b00; fill: #e07b00; }
svg .p50 { fill: #7aa6d6; } svg .p90 { fill: #1f5fa8; }
svg .rework { fill: #a40000; } svg .rating { fill: #2e7d32; }
svg text { fill: #333; }
ul.comments li { margin-bottom: .3rem; }
div.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; align-items: start; }
caption { font-weight: 600; text-align: left; padding-bottom: .2rem; }
footer { margin-top: 2rem; color: #777; font-size: .8rem; }
@page { size: A4; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  section { break-inside: avoid; }
  h2 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
  .noprint { display: none; }
}
"""


def _fmt_ratio(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f} %"


def _fmt_hours(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _value(value: float | int | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _cell(name: str, value: float | int | bool | None, text: str, css: str = "num") -> str:
    return (
        f'<td class="{css}" data-figure="{escape(name)}" data-value="{_value(value)}">'
        f"{escape(text)}</td>"
    )


def _milestone(item: ReportItem | None, milestone: str) -> MilestoneFigures | None:
    if item is None:
        return None
    return next((m for m in item.milestones if m.milestone == milestone), None)


def _summary_rows(role: str, item: ReportItem | None) -> list[str]:
    """The summary cells of one role (supplier / customer), keyed like the JSON report."""
    rows = []
    deliveries = item.deliveries if item else 0
    rows.append(
        ("Deliveries (cycles opened)", _cell(f"{role}.deliveries", deliveries, str(deliveries)))
    )
    for milestone in MILESTONES:
        m = _milestone(item, milestone)
        if m is None:
            continue
        meets = m.meets_objective
        rows += [
            (f"{milestone}: decided", _cell(f"{role}.{milestone}.count", m.count, str(m.count))),
            (
                f"{milestone}: on time",
                _cell(
                    f"{role}.{milestone}.on_time_ratio",
                    m.on_time_ratio,
                    _fmt_ratio(m.on_time_ratio),
                    "num " + ("" if meets is None else "ok" if meets else "ko"),
                ),
            ),
            (
                f"{milestone}: objective",
                _cell(f"{role}.{milestone}.objective", m.objective, _fmt_ratio(m.objective)),
            ),
            (
                f"{milestone}: breaches (net)",
                _cell(f"{role}.{milestone}.breaches", m.breaches, str(m.breaches)),
            ),
            (
                f"{milestone}: retractions",
                _cell(f"{role}.{milestone}.retractions", m.retractions, str(m.retractions)),
            ),
            *[
                (
                    f"{milestone}: {q} business time",
                    _cell(
                        f"{role}.{milestone}.business_seconds.{q}",
                        getattr(m.business_seconds, q),
                        _fmt_hours(getattr(m.business_seconds, q)),
                    ),
                )
                for q in ("p50", "p90", "p95")
            ],
            (
                f"{milestone}: p90 wall time",
                _cell(
                    f"{role}.{milestone}.wall_seconds.p90",
                    m.wall_seconds.p90,
                    _fmt_hours(m.wall_seconds.p90),
                ),
            ),
        ]
    rework = item.rework if item else None
    count = rework.count if rework else 0
    rows.append(("Rework (returned)", _cell(f"{role}.rework.count", count, str(count))))
    rate = rework.rate if rework else None
    rows.append(("Rework rate", _cell(f"{role}.rework.rate", rate, _fmt_ratio(rate))))
    sat = item.satisfaction if item else None
    n = sat.count if sat else 0
    rows.append(("Ratings", _cell(f"{role}.satisfaction.count", n, str(n))))
    mean = sat.mean if sat else None
    rows.append(
        (
            "Satisfaction (mean, 1-5)",
            _cell(f"{role}.satisfaction.mean", mean, DASH if mean is None else f"{mean:.2f}"),
        )
    )
    return [f"<tr><th>{escape(label)}</th>{cell}</tr>" for label, cell in rows]


def _summary(data: ReviewData) -> str:
    customer = _summary_rows("customer", data.as_customer)
    supplier = _summary_rows("supplier", data.as_supplier)
    return (
        '<section id="summary"><h2>Performance summary</h2>'
        "<p>As <b>internal customer</b>, the process receives handoffs and its own clocks "
        "run (response, resolution). As <b>supplier</b>, it hands work on: its internal "
        "customers' clocks, their rework and their ratings of its work.</p>"
        '<div class="pair">'
        "<table><caption>As internal customer (work received)</caption>"
        + "".join(customer)
        + "</table><table><caption>As supplier (work handed on)</caption>"
        + "".join(supplier)
        + "</table></div></section>"
    )


def _trend(data: ReviewData) -> str:
    labels = [p.label for p in data.trend]
    series = [
        Series(
            f"{milestone} on time",
            [p.figures.get(milestone, (None, 0))[0] for p in data.trend],
            milestone,
        )
        for milestone in (ClockName.RESPONSE.value, ClockName.RESOLUTION.value)
    ]
    objective = data.objectives.get(ClockName.RESOLUTION.value) or data.objectives.get(
        ClockName.RESPONSE.value
    )
    chart = line_chart(
        labels,
        series,
        objective=objective,
        title=f"On-time share of {data.process}'s clocks per month against the objective",
    )
    rows = "".join(
        f"<tr><th>{escape(p.label)}</th>"
        + "".join(
            _cell(
                f"trend.{p.label}.{m}.on_time_ratio",
                p.figures.get(m, (None, 0))[0],
                _fmt_ratio(p.figures.get(m, (None, 0))[0]),
            )
            + _cell(
                f"trend.{p.label}.{m}.count",
                p.figures.get(m, (None, 0))[1],
                str(p.figures.get(m, (None, 0))[1]),
            )
            for m in (ClockName.RESPONSE.value, ClockName.RESOLUTION.value)
        )
        + "</tr>"
        for p in data.trend
    )
    return (
        '<section id="trend"><h2>On-time trend against the objective (ISO 9001 9.1.3)</h2>'
        f"<p>Handoffs {escape(data.process)} received, per month: the share whose target was "
        "met, net of retractions.</p>"
        f"{chart}<table><tr><th>month</th><th>response on time</th><th>response decided</th>"
        f"<th>resolution on time</th><th>resolution decided</th></tr>{rows}</table></section>"
    )


def _pair_label(item: ReportItem) -> str:
    return f"{item.group['from']} → {item.group['to']}"


def _waits(data: ReviewData) -> str:
    bars = []
    for item in data.pairs:
        m = _milestone(item, ClockName.RESOLUTION.value) or _milestone(
            item, ClockName.RESPONSE.value
        )
        if m is None:
            continue
        bars.append(Bar(_pair_label(item), [m.business_seconds.p50, m.business_seconds.p90]))
    chart = bar_chart(
        bars,
        measures=[("p50", "p50"), ("p90", "p90")],
        title="Who waits for whom: resolution time per pair (business time)",
        text=_fmt_hours,
    )
    return (
        '<section id="waits"><h2>Who waits for whom</h2>'
        "<p>For each supplier → internal customer pair the process is part of, how long the "
        "supplier waits for its customer to resolve a handoff (business time, p50 and p90; "
        "response time where no resolution target is set).</p>"
        f"{chart}</section>"
    )


def _rework(data: ReviewData) -> str:
    bars = [Bar(_pair_label(i), [i.rework.rate]) for i in data.pairs if i.rework.rate is not None]
    chart = bar_chart(
        bars,
        measures=[("rework rate", "rework")],
        title="Rework rate per pair",
        text=_fmt_ratio,
    )
    reasons: dict[str, int] = {}
    for item in data.pairs:
        for r in item.rework.reasons:
            reasons[r.reason] = reasons.get(r.reason, 0) + r.count
    rows = "".join(
        f"<tr><td>{escape(reason)}</td>"
        + _cell(f"rework.reason.{reason}", count, str(count))
        + "</tr>"
        for reason, count in sorted(reasons.items(), key=lambda rc: (-rc[1], rc[0]))
    )
    return (
        '<section id="rework"><h2>Rework</h2>'
        "<p>Handoffs returned to the supplier as incomplete or inaccurate, over the deliveries "
        "of the period, and why.</p>"
        f"{chart}<table><tr><th>reason</th><th>times</th></tr>"
        f"{rows or '<tr><td colspan=2>no rework in this period</td></tr>'}</table></section>"
    )


def _satisfaction(data: ReviewData) -> str:
    item = data.as_supplier
    distribution = item.satisfaction.distribution if item else {str(r): 0 for r in range(1, 6)}
    chart = column_chart(
        [(r, distribution[r]) for r in sorted(distribution)],
        title=f"Ratings of {data.process}'s work by its internal customers",
    )
    comments = item.satisfaction.comments if item else []
    items = "".join(
        f'<li><b data-figure="comment.rating" data-value="{c.rating}">{c.rating}/5</b> '
        f"{escape(c.comment or '')} <small>({escape(c.handoff_id)}, "
        f"{c.at.astimezone(zone(data.window.timezone)).date().isoformat()})</small></li>"
        for c in comments
    )
    mean = item.satisfaction.mean if item else None
    return (
        '<section id="satisfaction"><h2>Customer satisfaction (ISO 9001 9.1.2)</h2>'
        f"<p>How {escape(data.process)}'s internal customers rated its handoffs (1 poor .. 5 "
        f"excellent): mean <b>{DASH if mean is None else f'{mean:.2f}'}</b>.</p>"
        f"{chart}<h3>Latest comments</h3>"
        f'<ul class="comments">{items or "<li>no comment in this period</li>"}</ul></section>'
    )


def _relations(data: ReviewData) -> str:
    def listing(names: Iterable[str]) -> str:
        found = "".join(f"<li>{escape(n)}</li>" for n in names)
        return f"<ul>{found or '<li>none</li>'}</ul>"

    return (
        '<section id="relations"><h2>Internal customers and suppliers</h2>'
        '<div class="pair">'
        f"<div><h3>Suppliers (hand work to {escape(data.process)})</h3>"
        f"{listing(data.suppliers)}</div>"
        f"<div><h3>Internal customers (receive its work)</h3>{listing(data.customers)}</div>"
        "</div></section>"
    )


def _standard_row(s: StandardInForce) -> str:
    return (
        f'<tr><td>{escape(s.route_id)}</td><td class="num">{s.version}</td>'
        f"<td>{escape(s.from_process)} → {escape(s.to_process)}</td><td>{escape(s.kind)}</td>"
        f"<td>{escape(s.targets)}</td>"
        + _cell(f"standard.{s.route_id}.objective", s.objective, _fmt_ratio(s.objective))
        + f"<td>{escape(s.calendar)}</td><td>{escape(s.supplier_owner or DASH)}</td>"
        f"<td>{escape(s.customer_owner or DASH)}</td></tr>"
    )


def _standards(data: ReviewData) -> str:
    rows = "".join(_standard_row(s) for s in data.standards)
    return (
        '<section id="standards"><h2>Service standards in force</h2>'
        f"<p>From process map version {data.map_version or DASH}.</p>"
        "<table><tr><th>route</th><th>version</th><th>pair</th><th>kind</th><th>targets</th>"
        "<th>objective</th><th>calendar</th><th>supplier owner</th><th>customer owner</th>"
        f"</tr>{rows or '<tr><td colspan=9>no route in the map in force</td></tr>'}</table>"
        "</section>"
    )


def _late_row(h: LateHandoff) -> str:
    deadline = h.deadline.isoformat(timespec="minutes") if h.deadline else DASH
    reached = h.reached_at.isoformat(timespec="minutes") if h.reached_at else "not yet"
    return (
        f'<tr><td><a href="{escape(h.status_url)}">{escape(h.handoff_id)}</a></td>'
        f"<td>{escape(h.case_id)}</td><td>{escape(h.from_process)} → {escape(h.to_process)}</td>"
        f"<td>{escape(h.milestone)}</td><td>{escape(h.priority)}</td><td>{deadline}</td>"
        f"<td>{reached}</td></tr>"
    )


def _late(data: ReviewData) -> str:
    rows = "".join(_late_row(h) for h in data.late)
    return (
        '<section id="late"><h2>Latest late handoffs</h2>'
        "<table><tr><th>handoff</th><th>case</th><th>pair</th><th>milestone</th>"
        "<th>priority</th><th>deadline (UTC)</th><th>reached</th></tr>"
        f"{rows or '<tr><td colspan=7>no breach in this period</td></tr>'}</table></section>"
    )


def review_html(data: ReviewData) -> str:
    """The whole page."""
    title = f"Management review: {data.name} — {data.window.label}"
    owner = f" · owner {escape(data.owner)}" if data.owner else ""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<style>{STYLE}</style></head><body>"
        f'<header><h1 data-process="{escape(data.process)}">{escape(title)}</h1>'
        f'<p class="meta">Process <b>{escape(data.process)}</b>{owner} · period '
        f'<span data-window-start="{data.window.start.isoformat()}" '
        f'data-window-end="{data.window.end.isoformat()}">{escape(data.window.label)} '
        f"({escape(data.window.timezone)})</span> · generated "
        f"{data.generated_at.isoformat(timespec='seconds')}</p></header>"
        + _summary(data)
        + _trend(data)
        + _waits(data)
        + _rework(data)
        + _satisfaction(data)
        + _relations(data)
        + _standards(data)
        + _late(data)
        + "<footer>Baton · figures as in the JSON reports of /v1/reports (net of retractions; "
        "clocks count in the period their outcome happened in).</footer></body></html>\n"
    )

"""One self-contained HTML page about a set of alerts, for people rather than parsers.

`render_report(alerts)` takes alert documents (`Alert.to_dict()`, as `replay` writes them) and
returns a page with no external reference at all (no script, style, font or image fetched: it
opens offline and from a mail attachment): the alerts over time by severity (stacked, one block
per alert), a timeline per principal, and a table with one row per alert (its new actions,
reasons and ATT&CK techniques), filterable by severity and account. The charts are SVG drawn
here; a few lines of inline JavaScript apply the filters (also from the URL: `#severity=high,
critical&account=123456789012`) and re-stack the chart.

Every string from an alert is escaped: alerts copy attacker-controlled text (user agents, role
session names) from CloudTrail.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson

SEVERITIES = ("critical", "high", "medium", "low", "informational")
COLORS = {
    "critical": "#7b1fa2",
    "high": "#d32f2f",
    "medium": "#f57c00",
    "low": "#fbc02d",
    "informational": "#90a4ae",
}
DAY = 86_400
LISTED_ACTIONS = 12
BLOCK = 9  # px: one alert in the chart over time


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def _short(action: str) -> str:
    source, sep, event = action.partition(":")
    return f"{source.removesuffix('.amazonaws.com')}:{event}" if sep else action


def _account_label(alert: Mapping[str, Any]) -> str:
    account = str(alert.get("account_id") or "")
    name = alert.get("account_name")
    return f"{account} ({name})" if name else account


def _who(alert: Mapping[str, Any]) -> str:
    principal = alert.get("principal") or {}
    return str(principal.get("arn") or principal.get("name") or "?")


def _over_time(alerts: Sequence[Mapping[str, Any]]) -> str:
    """Stacked blocks per day, most severe at the bottom; the script re-stacks what is shown."""
    days = sorted({_day(_epoch(a["first_event_time"])) for a in alerts})
    per_day = Counter(_day(_epoch(a["first_event_time"])) for a in alerts)
    width, left, column = max(480, 60 * len(days) + 60), 40, 60
    height = max(per_day.values(), default=1) * BLOCK + 50
    base = height - 30
    parts = [
        f'<svg id="over-time" role="img" aria-label="alerts per day by severity" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" data-base="{base}">'
    ]
    order = {s: n for n, s in enumerate(SEVERITIES)}
    stacks: dict[str, int] = defaultdict(int)
    for alert in sorted(alerts, key=lambda a: (order.get(a["severity"], 9), a["first_event_time"])):
        day = _day(_epoch(alert["first_event_time"]))
        x = left + days.index(day) * column
        y = base - (stacks[day] + 1) * BLOCK
        stacks[day] += 1
        parts.append(
            f'<rect class="block" x="{x}" y="{y}" width="{column - 8}" height="{BLOCK - 1}" '
            f'fill="{COLORS.get(alert["severity"], "#000")}" data-day="{escape(day)}" '
            f'data-severity="{escape(alert["severity"])}" '
            f'data-account="{escape(str(alert.get("account_id") or ""))}">'
            f"<title>{escape(day)} {escape(alert['severity'])}: {escape(_who(alert))}</title></rect>"
        )
    for n, day in enumerate(days):
        middle = left + n * column + (column - 8) / 2
        parts.append(
            f'<text x="{middle}" y="{base + 16}" text-anchor="middle" font-size="10">{escape(day[5:])}</text>'
        )
    parts.append(f'<line x1="{left - 4}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#555"/>')
    parts.append("</svg>")
    return "".join(parts)


def _timeline(alerts: Sequence[Mapping[str, Any]]) -> str:
    """One row per principal, a dot per alert at its first event time (size by severity)."""
    if not alerts:
        return ""
    times = [_epoch(a["first_event_time"]) for a in alerts]
    start, end = min(times), max(times)
    start -= start % DAY
    end = end - end % DAY + DAY
    label_w, plot_w, row_h = 420, 560, 22
    principals = sorted(
        {_who(a) for a in alerts},
        key=lambda p: min(
            (SEVERITIES.index(a["severity"]), a["first_event_time"]) for a in alerts if _who(a) == p
        ),
    )
    height = row_h * len(principals) + 30
    width = label_w + plot_w + 20

    def x_of(t: int) -> float:
        return label_w + (t - start) / (end - start) * plot_w

    parts = [
        f'<svg id="timeline" role="img" aria-label="timeline per principal" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for n, day_start in enumerate(range(start, end + 1, DAY)):
        x = x_of(day_start)
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 20}" stroke="#eee"/>')
        if n % max(1, (end - start) // DAY // 10) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">'
                f"{escape(_day(day_start)[5:])}</text>"
            )
    radius = {"critical": 7, "high": 6, "medium": 5, "low": 4, "informational": 3}
    for row, principal in enumerate(principals):
        y = row * row_h + 14
        label = principal if len(principal) <= 58 else "…" + principal[-57:]
        parts.append(f'<g class="principal" data-principal="{escape(principal)}">')
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 4}" font-size="11" text-anchor="end">'
            f"<title>{escape(principal)}</title>{escape(label)}</text>"
        )
        parts.append(
            f'<line x1="{label_w}" y1="{y}" x2="{label_w + plot_w}" y2="{y}" stroke="#ddd"/>'
        )
        for alert in (a for a in alerts if _who(a) == principal):
            t = _epoch(alert["first_event_time"])
            parts.append(
                f'<circle class="dot" cx="{x_of(t):.1f}" cy="{y}" r="{radius.get(alert["severity"], 3)}" '
                f'fill="{COLORS.get(alert["severity"], "#000")}" '
                f'data-severity="{escape(alert["severity"])}" '
                f'data-account="{escape(str(alert.get("account_id") or ""))}">'
                f"<title>{escape(alert['first_event_time'])} {escape(alert['severity'])}: "
                f"{escape(str(alert.get('new_actions_total')))} new action(s)</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _row(alert: Mapping[str, Any]) -> str:
    principal = alert.get("principal") or {}
    actions = list(alert.get("new_actions") or [])
    total = int(alert.get("new_actions_total") or len(actions))
    listed = "".join(
        f"<li><code>{escape(_short(str(a.get('action') or '')))}</code>"
        + (
            f' <span class="err">{escape(str(a["error_code"]))}</span>'
            if a.get("error_code")
            else ""
        )
        + f'<br><span class="muted">{escape(str(a.get("event_time") or ""))} '
        f"{escape(str(a.get('region') or ''))} {escape(str(a.get('source_ip') or ''))}</span></li>"
        for a in actions[:LISTED_ACTIONS]
    )
    more = total - min(len(actions), LISTED_ACTIONS)
    rest = (
        f"<details><summary>{more} more</summary><ul>"
        + "".join(
            f"<li><code>{escape(_short(str(a.get('action') or '')))}</code></li>"
            for a in actions[LISTED_ACTIONS:]
        )
        + (
            f"<li>… {total - len(actions)} not listed in the alert</li>"
            if total > len(actions)
            else ""
        )
        + "</ul></details>"
        if more > 0
        else ""
    )
    reasons = "".join(f"<li>{escape(str(r))}</li>" for r in alert.get("reasons") or [])
    mitre = " ".join(
        f'<span class="tag">{escape(str(t))}</span>' for t in alert.get("mitre_technique_id") or []
    )
    severity = str(alert.get("severity") or "")
    return (
        f'<tr class="alert-row" data-id="{escape(str(alert.get("alert_id") or ""))}" '
        f'data-severity="{escape(severity)}" '
        f'data-account="{escape(str(alert.get("account_id") or ""))}">'
        f'<td class="time">{escape(str(alert.get("first_event_time") or ""))}</td>'
        f'<td><span class="sev" style="background:{COLORS.get(severity, "#000")}">'
        f"{escape(severity)}</span></td>"
        f"<td>{escape(_account_label(alert))}</td>"
        f"<td><b>{escape(str(principal.get('name') or ''))}</b> "
        f'<span class="muted">{escape(str(principal.get("type") or ""))}</span><br>'
        f'<span class="arn">{escape(str(principal.get("arn") or ""))}</span></td>'
        f"<td>{escape(str(alert.get('detector') or ''))}<br>{mitre}</td>"
        f'<td><ul class="actions">{listed}</ul>{rest}</td>'
        f'<td><ul class="reasons">{reasons}</ul></td>'
        "</tr>"
    )


_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.muted{color:#777;font-size:12px} .arn{color:#555;font-size:11px;word-break:break-all}
.sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;white-space:nowrap}
.tag{background:#eceff1;border-radius:3px;padding:0 4px;font-size:11px}
.err{color:#b71c1c;font-size:11px}
table{border-collapse:collapse;width:100%;table-layout:fixed} th,td{border-bottom:1px solid #e0e0e0;
padding:6px 8px;vertical-align:top;text-align:left} th{background:#fafafa;position:sticky;top:0}
td.time{font-size:12px} td{overflow-wrap:anywhere} ul{margin:0;padding-left:16px}
.filters{display:flex;gap:18px;align-items:center;flex-wrap:wrap;padding:10px;
background:#f5f5f5;border-radius:6px} .filters label{white-space:nowrap}
.counts span{margin-right:12px} svg{max-width:100%;height:auto}
"""

_SCRIPT = """
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr.alert-row'));
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input.sev-filter'));
  var account = document.getElementById('account-filter');
  function fromHash() {
    var params = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var p = kv.split('='); if (p[0]) params[p[0]] = decodeURIComponent(p[1] || '');
    });
    if (params.severity) {
      var wanted = params.severity.split(',');
      boxes.forEach(function (b) { b.checked = wanted.indexOf(b.value) >= 0; });
    }
    if (params.account) account.value = params.account;
  }
  function shown(el) {
    var sev = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    return sev.indexOf(el.getAttribute('data-severity')) >= 0 &&
      (!account.value || account.value === el.getAttribute('data-account'));
  }
  function apply() {
    var visible = 0;
    rows.forEach(function (r) { var s = shown(r); r.hidden = !s; if (s) visible++; });
    document.querySelectorAll('#timeline circle.dot').forEach(function (c) {
      c.style.display = shown(c) ? '' : 'none';
    });
    document.querySelectorAll('#timeline g.principal').forEach(function (g) {
      var any = Array.prototype.some.call(g.querySelectorAll('circle.dot'), shown);
      g.style.opacity = any ? '1' : '0.25';
    });
    var chart = document.getElementById('over-time');
    if (chart) {
      var base = +chart.getAttribute('data-base'), stacks = {};
      chart.querySelectorAll('rect.block').forEach(function (b) {
        if (!shown(b)) { b.style.display = 'none'; return; }
        var d = b.getAttribute('data-day'); stacks[d] = (stacks[d] || 0) + 1;
        b.style.display = ''; b.setAttribute('y', base - stacks[d] * BLOCK);
      });
    }
    document.getElementById('visible-count').textContent = visible;
    document.body.setAttribute('data-visible-rows', String(visible));
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  account.addEventListener('change', apply);
  window.addEventListener('hashchange', function () { fromHash(); apply(); });
  fromHash(); apply();
  document.body.setAttribute('data-ready', '1');
})();
"""


def render_report(
    alerts: Sequence[Mapping[str, Any]], title: str = "cloudtrail-anomaly alerts"
) -> str:
    """The report page for `alerts` (alert documents), newest first in the table."""
    ordered = sorted(
        alerts, key=lambda a: (a["first_event_time"], a.get("alert_id", "")), reverse=True
    )
    counts = Counter(str(a.get("severity")) for a in alerts)
    accounts = sorted({(str(a.get("account_id") or ""), _account_label(a)) for a in alerts})
    span = (
        f"{escape(min(a['first_event_time'] for a in alerts))} to "
        f"{escape(max(a['last_event_time'] for a in alerts))}"
        if alerts
        else "no alerts"
    )
    severity_boxes = "".join(
        f'<label><input type="checkbox" class="sev-filter" value="{s}" checked> '
        f'<span class="sev" style="background:{COLORS[s]}">{s}</span> {counts.get(s, 0)}</label>'
        for s in SEVERITIES
    )
    account_options = '<option value="">all accounts</option>' + "".join(
        f'<option value="{escape(uid)}">{escape(label)}</option>' for uid, label in accounts
    )
    rows = "".join(_row(a) for a in ordered) or (
        '<tr><td colspan="7" class="muted">No alerts.</td></tr>'
    )
    script = _SCRIPT.replace("BLOCK", str(BLOCK))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may be fetched: the page is read offline and from mail.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body data-alerts="{len(alerts)}">'
        f"<h1>{escape(title)}</h1>"
        f'<div class="muted">{len(alerts)} alert(s), {span}</div>'
        '<h2>Filter</h2><div class="filters">'
        f"{severity_boxes}"
        f'<label>account <select id="account-filter">{account_options}</select></label>'
        '<span><b id="visible-count">' + str(len(alerts)) + "</b> shown</span></div>"
        "<h2>Alerts over time</h2>"
        '<div class="muted">one block per alert, by the day of its first event</div>'
        f"{_over_time(alerts)}"
        "<h2>Timeline per principal</h2>"
        '<div class="muted">one dot per alert at its first event; most severe principals first</div>'
        f"{_timeline(alerts)}"
        "<h2>Alerts</h2>"
        '<table id="alerts"><colgroup><col style="width:9%"><col style="width:7%">'
        '<col style="width:10%"><col style="width:18%"><col style="width:8%">'
        '<col style="width:24%"><col style="width:24%"></colgroup><thead><tr><th>first event</th><th>severity</th><th>account</th>'
        "<th>principal</th><th>detector</th><th>new actions</th><th>reasons</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<script>{script}</script>"
        "</body></html>\n"
    )


class ReportInputError(ValueError):
    """A line of the alerts file is not an alert; the message names the line."""


def read_alerts(data: bytes, origin: str = "<alerts>") -> list[dict[str, Any]]:
    """The alerts of a JSON Lines file (blank lines skipped)."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ReportInputError(f"{origin}:{n}: not JSON ({exc})") from None
        if not isinstance(doc, dict) or not {"alert_id", "severity", "first_event_time"} <= set(
            doc
        ):
            raise ReportInputError(
                f"{origin}:{n}: not an alert (alert_id, severity, first_event_time expected)"
            )
        if doc["severity"] not in COLORS:
            raise ReportInputError(f"{origin}:{n}: unknown severity {doc['severity']!r}")
        try:
            _epoch(str(doc["first_event_time"]))
            _epoch(str(doc.get("last_event_time") or doc["first_event_time"]))
        except ValueError:
            raise ReportInputError(f"{origin}:{n}: first_event_time is not an ISO time") from None
        doc.setdefault("last_event_time", doc["first_event_time"])
        out.append(doc)
    return out

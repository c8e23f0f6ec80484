"""`cloudtrail-anomaly report ALERTS.jsonl -o report.html`: the alerts as one HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...report.html import ReportInputError, read_alerts, render_report

EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML page about a file of alerts (charts, filters)",
    )
    p.add_argument("alerts", type=Path, metavar="ALERTS.jsonl", help="alerts as replay writes them")
    p.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--title", default="cloudtrail-anomaly alerts", help="the page's title")


def run(args: argparse.Namespace) -> int:
    try:
        alerts = read_alerts(args.alerts.read_bytes(), str(args.alerts))
    except OSError as exc:
        print(f"cloudtrail-anomaly: error: {args.alerts}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except ReportInputError as exc:
        print(f"cloudtrail-anomaly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    page = render_report(alerts, title=args.title)
    try:
        args.output.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"cloudtrail-anomaly: error: {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{len(alerts):,} alert(s) → {args.output}", file=sys.stderr)
    return 0

"""`cloudtrail-anomaly baseline PATH... --state FILE`: learn from history, every tuple recorded
and nothing alerted: the replay's pass with alerting off."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import options, replay


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("baseline", help="learn from history: record every tuple, alert nothing")
    options.add_trail_arguments(p)
    p.add_argument("--state", type=Path, required=True, help="SQLite baseline file")


def run(args: argparse.Namespace) -> int:
    return replay.detect(args, alerting=False)

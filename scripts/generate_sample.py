#!/usr/bin/env python3
"""Generate a deterministic, realistic synthetic AWS organization CloudTrail trail.

The output feeds the README demo and the benchmarks of cloudtrail-anomaly, a detector of
never-before-seen (principal, action) tuples. It has two phases, written under two roots:

    DIR/history/AWSLogs/<o-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
    DIR/live/AWSLogs/<o-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz

with `<file>` = `<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>`: one gzipped
`{"Records": [...]}` delivery object per account, region and 5-minute slot that has events,
stamped with the end of the slot, as an organization trail delivers them. The history phase is
steady benign behaviour: every principal keeps a fixed set of actions, so once the history is
baselined the live phase yields little novelty besides what is injected there on purpose:
attack scenarios modelled on Stratus Red Team techniques and benign novelty (people trying a new
service, a deploy role gaining actions after a release, new hires, a new application role).
`DIR/scenarios.json` lists those injections as ground truth.

`--single-file PATH --target-mb N` instead streams one delivery object of about N MB (10**6
bytes, uncompressed) with a mix of many principals, for throughput benchmarks.

Everything derives from `--seed` through `random.Random`; gzip headers carry mtime 0, and no
clock is read for the output, so the same arguments give byte-identical files. Standard library
only; orjson is used when importable (its output is the same bytes as the json fallback).

This file is the command line; the generator is the package `synthetic_trail/` beside it (its
`__init__.py` lists the modules).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

# The generator is the package beside this file. Run as a script, this folder is sys.path[0];
# loaded by path (the tests do), it is not, so put it there before importing the package.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from synthetic_trail.writer import generate_trail, write_single_file  # noqa: E402

REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")


def _regions(text: str) -> list[str]:
    regions = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in regions if not REGION_RE.match(r)]
    if not regions or bad:
        raise argparse.ArgumentTypeError(f"bad region list {text!r}")
    return list(dict.fromkeys(regions))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Generate a deterministic synthetic AWS organization CloudTrail trail."
    )
    target = ap.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="directory for history/, live/ and scenarios.json")
    target.add_argument("--single-file", help="write one gzipped delivery object to this path")
    ap.add_argument(
        "--target-mb",
        type=_positive_float,
        default=80.0,
        help="uncompressed size of --single-file, in MB of 10**6 bytes (default 80)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--accounts", type=_positive_int, default=4)
    ap.add_argument("--regions", type=_regions, default=["us-east-1", "eu-west-1", "us-west-2"])
    ap.add_argument("--history-days", type=_positive_int, default=28)
    ap.add_argument("--live-days", type=_positive_int, default=7)
    ap.add_argument(
        "--scale",
        type=_positive_float,
        default=1.0,
        help="multiplies the event volume (default 1.0, about 120k records)",
    )
    ap.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2026, 10, 1),
        help="first day of the history, UTC (default 2026-10-01)",
    )
    return ap.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()  # only for the summary line; the output never sees a clock
    if args.single_file:
        stats = write_single_file(args)
        where = args.single_file
        note = ""
    else:
        stats, docs = generate_trail(args)
        where = args.out
        note = f", {len(docs)} scenarios"
    print(
        f"generate_sample: {stats.files} files, {stats.records} records, "
        f"{stats.gz_bytes} bytes gzipped ({stats.raw_bytes} uncompressed) in {where}{note}, "
        f"{time.perf_counter() - began:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

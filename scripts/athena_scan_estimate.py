#!/usr/bin/env python3
"""Estimate the bytes Athena scans for the hourly reconciliation, default vs full mode, and for a
backfill, on a trail laid out on disk (the demo data: `python scripts/generate_sample.py --out
DIR`; its history/ and live/ folders are read as one bucket).

Athena reads whole gzipped objects (the JSON SerDe cannot skip inside one), so what a query
scans is the gzipped size of the objects it reads. Which objects those are comes from the
queries' own scopes (`athena/queries.py`: `QueryScope.covers`, checked against the SQL's WHERE
clause by DuckDB in tests/test_athena_sql.py), for every hour of the live phase:

- default mode ("missed"): nothing when the hour is complete (no query at all); with k missed
  objects, those k objects (k drawn at random, seeded, among the hour's objects);
- full mode: every object delivered in the hour (key ranges on "$path", pruned by Trino as it
  prunes partitions); and, as an upper bound should Athena not prune "$path" ranges, the whole
  day partitions the hour touches;
- backfill: N days of partitions.

Athena bills at least 10 MB a query ($5 per TB scanned in most regions): both are shown.

    python scripts/athena_scan_estimate.py --data /tmp/x [--missed 3] [--backfill-days 90]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloudtrail_anomaly.athena.queries import history_scope, missed_scopes, window_scopes
from cloudtrail_anomaly.trail.keys import KeyKind, classify_key
from cloudtrail_anomaly.trail.layout import TrailLayout, day_value

HOUR = 3600
MIN_BILLED = 10 * 1024**2
PRICE_PER_TB = 5.0


@dataclass(frozen=True)
class Obj:
    key: str
    path: str
    account: str
    region: str
    day: str
    delivered: int
    size: int
    phase: str  # history | live (the folder it was found in)


def load(roots: list[Path]) -> tuple[TrailLayout, list[Obj]]:
    objs: list[Obj] = []
    org = ""
    for root in roots:
        for p in root.rglob("*.json.gz"):
            key = p.relative_to(root).as_posix()
            c = classify_key(key)
            lk = c.log_key
            if c.kind is not KeyKind.LOG or lk is None:
                continue
            org = lk.org_id or ""
            objs.append(
                Obj(
                    key,
                    "",
                    lk.account_id,
                    lk.region,
                    day_value(lk.day),
                    int(lk.delivered_at.timestamp()),
                    p.stat().st_size,
                    root.name,
                )
            )
    layout = TrailLayout("demo-trail-bucket", "", org)
    return layout, [
        Obj(o.key, layout.s3_uri(o.key), o.account, o.region, o.day, o.delivered, o.size, o.phase)
        for o in objs
    ]


def billed(scanned: int, queries: int) -> int:
    return max(scanned, MIN_BILLED * queries) if queries else 0


def dollars(n: int) -> float:
    return n / 1024**4 * PRICE_PER_TB


def mib(n: float) -> str:
    return f"{n / 1024**2:,.2f} MiB"


def kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="generate_sample.py output folder")
    ap.add_argument("--missed", type=int, default=3, help="objects missed in an hour (default 3)")
    ap.add_argument("--backfill-days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    roots = [r for r in (args.data / "history", args.data / "live") if r.is_dir()] or [args.data]
    layout, objs = load(roots)
    if not objs:
        print(f"no CloudTrail log objects under {args.data}", file=sys.stderr)
        return 1
    pairs = sorted({(o.account, o.region) for o in objs})
    live = [o for o in objs if o.phase == "live"] or objs
    live_start = min(o.delivered for o in live)
    end_all = max(o.delivered for o in objs) + 60
    by_hour: dict[int, list[Obj]] = defaultdict(list)
    for o in objs:
        by_hour[o.delivered // HOUR * HOUR].append(o)
    rng = random.Random(args.seed)
    default_k: list[int] = []
    full_pruned: list[int] = []
    full_partitions: list[int] = []
    hours = range(live_start // HOUR * HOUR, end_all // HOUR * HOUR + HOUR, HOUR)
    for start in hours:
        in_hour = by_hour.get(start, [])
        if not in_hour:
            continue
        (scope,) = window_scopes(layout, pairs, start, start + HOUR)
        full_pruned.append(
            sum(
                o.size
                for o in objs
                if o.day in scope.days and scope.covers(o.path, o.account, o.region, o.day)
            )
        )
        full_partitions.append(
            sum(o.size for o in objs if scope.covers_partition(o.account, o.region, o.day))
        )
        missed = rng.sample(in_hour, min(args.missed, len(in_hour)))
        (mscope,) = missed_scopes(layout, [o.key for o in missed])
        default_k.append(
            sum(o.size for o in missed if mscope.covers(o.path, o.account, o.region, o.day))
        )
    end = end_all
    bscope = history_scope(pairs, end - args.backfill_days * 86_400, end)
    backfill_bytes = sum(
        o.size for o in objs if bscope.covers_partition(o.account, o.region, o.day)
    )
    total = sum(o.size for o in objs)

    def row(name: str, values: list[int], queries: int) -> str:
        mean = statistics.fmean(values) if values else 0.0
        return (
            f"  {name:<47} mean {kib(mean):>12}  median {kib(statistics.median(values) if values else 0):>12}"
            f"  max {kib(max(values) if values else 0):>12}  billed {mib(billed(int(mean), queries)):>9}"
            f"  (${dollars(billed(int(mean), queries)) * 24 * 30:,.4f} a month if every hour)"
        )

    first = datetime.fromtimestamp(min(o.delivered for o in objs), UTC)
    print(
        f"{len(objs):,} objects, {mib(total)} gzipped, {len(pairs)} account-region pairs, "
        f"{first:%Y-%m-%d} .. {datetime.fromtimestamp(end_all, UTC):%Y-%m-%d}; "
        f"{len(full_pruned):,} hours of the live phase with objects, "
        f"{statistics.fmean(len(by_hour[h]) for h in hours if by_hour.get(h)):.1f} objects an hour"
    )
    print("Athena bytes scanned per hourly run (gzipped objects read):")
    print(row("default, complete hour (no query)", [0] * len(full_pruned), 0))
    print(row(f"default, {args.missed} objects missed in the hour", default_k, 1))
    print(row('full, window key ranges ("$path" pruned)', full_pruned, 1))
    print(row("full, upper bound (day partitions, no pruning)", full_partitions, 1))
    print(
        f"backfill --days {args.backfill_days}: {mib(backfill_bytes)} "
        f"(${dollars(billed(backfill_bytes, 1)):,.4f}), one query"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

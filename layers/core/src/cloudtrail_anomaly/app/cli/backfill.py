"""`cloudtrail-anomaly backfill --days 90`: learn the baseline from a trail's history in S3,
through Athena, into a SQLite state file or the deployment's DynamoDB table.

The same use case as the reconciliation function's one-off `{"backfill_days": 90}` invocation,
for histories too large for one Lambda invocation. AWS credentials come from the usual boto3
chain; boto3 is imported only here, so the rest of the CLI runs without it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...ports import Baseline, QueryFailed
from ...stores.sqlite import SqliteBaseline, StateFileError
from .. import wiring
from ..settings import Config, ConfigError, load_config
from . import exits, options

if TYPE_CHECKING:
    from ...athena.schema import TableSpec
    from ...trail.layout import TrailLayout

# The Athena, layout and reconciliation modules are imported by `run`, not here: every other
# subcommand would pay for them at each start (about 30 ms of the CLI's 180).

PRICE_PER_TB = 5.0  # Athena, US regions: what the bytes scanned cost


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backfill",
        help="learn the baseline from the trail's history through Athena (alerts nothing)",
    )
    p.add_argument("--days", type=int, help="days of history (default 90)")
    p.add_argument("--until", help="end of the history, ISO 8601 UTC (default: now)")
    p.add_argument("--bucket", required=True, help="the trail's S3 bucket")
    p.add_argument("--prefix", default="", help="the trail's S3 key prefix, if any")
    p.add_argument("--org-id", default="", help="o-... for an organization trail")
    p.add_argument("--accounts", default="", help="comma-separated (default: the bucket's)")
    p.add_argument("--regions", default="", help="comma-separated (default: the bucket's)")
    p.add_argument("--database", default="cloudtrail_anomaly", help="Glue database")
    p.add_argument("--table", default="cloudtrail", help="Glue table (created if absent)")
    p.add_argument("--workgroup", default="primary", help="Athena workgroup")
    p.add_argument("--output-location", default="", help="s3://bucket/prefix/ for results")
    p.add_argument("--partitions", choices=("projection", "explicit"), default="projection")
    p.add_argument("--account-projection", choices=("injected", "enum"), default="injected")
    p.add_argument("--region-projection", choices=("injected", "enum"), default="injected")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--state", type=Path, help="SQLite baseline file, created if absent")
    target.add_argument("--baseline-table", help="the deployment's DynamoDB baseline table")
    p.add_argument(
        "--region", help="AWS region of the trail bucket and Athena (default: $AWS_REGION)"
    )
    p.add_argument("--config", type=Path, help=options.CONFIG_HELP)


def _names(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def run(args: argparse.Namespace) -> int:
    from ...athena.schema import TableSpec
    from ...trail.layout import SqlInputError, TrailLayout
    from ...usecases.backfill import DEFAULT_DAYS

    if args.days is None:
        args.days = DEFAULT_DAYS
    try:
        config = load_config(args.config)
        if args.days <= 0:
            raise ConfigError("--days must be > 0")
        now = int(time.time())
        if args.until:
            until = datetime.fromisoformat(args.until)
            if until.tzinfo is None:
                raise ConfigError("--until needs a time zone (e.g. 2024-06-01T00:00:00Z)")
            now = int(until.timestamp())
        layout = TrailLayout(args.bucket, args.prefix.strip("/"), args.org_id)
        accounts, regions = _names(args.accounts), _names(args.regions)
        spec = TableSpec(
            args.database,
            args.table,
            layout,
            partitioning=args.partitions,
            account_projection=args.account_projection,
            region_projection=args.region_projection,
            accounts=accounts,
            regions=regions,
        )
    except (ConfigError, SqlInputError, ValueError) as exc:
        exits.error(str(exc))
        return exits.USAGE
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        exits.error("backfill needs boto3: pip install 'cloudtrail-anomaly[aws]'")
        return exits.USAGE
    region = args.region or os.environ.get("AWS_REGION") or None  # else boto3's own chain
    session = boto3.Session(region_name=region)
    # Checked before anything is created (the state file): one line saying what is missing.
    missing = _missing_aws_setup(session)
    if missing:
        exits.error(missing)
        return exits.USAGE
    try:
        return _backfill(args, session, config, spec, layout, accounts, regions, now)
    except (BotoCoreError, ClientError) as exc:
        exits.error(f"AWS: {exc}")
        return exits.INCOMPLETE


def _missing_aws_setup(session: Any) -> str:
    """What boto3 lacks to call AWS, as one line; "" when it has a region and credentials."""
    if not session.region_name:
        return "no AWS region: pass --region or set AWS_REGION (the trail bucket's region)"
    if session.get_credentials() is None:
        return (
            "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run where a role provides them"
        )
    return ""


def _backfill(
    args: argparse.Namespace,
    session: Any,
    config: Config,
    spec: TableSpec,
    layout: TrailLayout,
    accounts: tuple[str, ...],
    regions: tuple[str, ...],
    now: int,
) -> int:
    from ...athena.runner import AthenaQueryRunner
    from ...athena.table import AthenaTable
    from ...aws import retry_config
    from ...aws.s3_listing import S3ObjectLister
    from ...stores.dynamodb.baseline import DynamoDbBaseline
    from ...trail.layout import SqlInputError
    from ...usecases.backfill import backfill
    from ...usecases.reconcile import discover_pairs

    baseline: Baseline
    try:
        if args.state:
            baseline = SqliteBaseline(args.state)
        else:
            baseline = DynamoDbBaseline(
                session.client("dynamodb", config=retry_config()), args.baseline_table
            )
        runner = AthenaQueryRunner(
            session.client("athena", config=retry_config()),
            workgroup=args.workgroup,
            output_location=args.output_location,
        )
    except (StateFileError, SqlInputError) as exc:
        exits.error(str(exc))
        return exits.USAGE
    for warning in spec.warnings():
        exits.warning(warning)
    lister = S3ObjectLister(session.client("s3", config=retry_config()))
    pairs = discover_pairs(lister, layout, accounts, regions)
    learner = wiring.detector(baseline, config, alerting=False)
    try:
        report = backfill(AthenaTable(spec, runner), learner, pairs, now, args.days)
    except QueryFailed as exc:
        exits.error(str(exc))
        return exits.INCOMPLETE
    scanned = report.bytes_scanned
    print(
        f"backfill {report.label}: {len(pairs):,} account-region pair(s), "
        f"{report.stats['rows']:,} distinct tuple row(s), {report.stats['new_tuples']:,} new "
        f"tuple(s), {len(report.principals):,} principal(s); Athena scanned {scanned:,} bytes "
        f"(~${max(scanned, 10 * 1024**2) / 1024**4 * PRICE_PER_TB:.4f})",
        file=sys.stderr,
    )
    return exits.OK

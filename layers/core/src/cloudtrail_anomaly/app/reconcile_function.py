"""The reconciliation function's parts, built once per container, and what it does per event.

The handler module stays a few lines: `cold_start` builds `ReconcileFunction` from validated
settings and its boto3 clients, with powertools named after the service, and the handler calls
`handle` with each event: the hourly schedule (its `time` is the reconciliation's `now`), or a
one-off `{"backfill_days": 90}` that learns the baseline from history. The real-time parts
(baseline, ledger, outbox, sink, detector) are the real-time function's own
(`wiring.realtime_parts`): missed objects go through the very same use case.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from ..athena.runner import AthenaQueryRunner
from ..athena.table import AthenaTable
from ..aws.s3_listing import S3ObjectLister
from ..domain.events import parse_event_time
from ..ports import AlertSink
from ..usecases.backfill import BackfillReport, backfill
from ..usecases.reconcile import Reconciler, ReconcileReport, discover_pairs
from . import wiring
from .settings import ReconcileFunctionSettings

if TYPE_CHECKING:
    from mypy_boto3_athena.client import AthenaClient
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

# Published every run, zero or not, so that a dashboard's "nothing missed" is a real zero.
CORE_METRICS = (
    "digests_checked",
    "files_expected",
    "files_missed",
    "files_reprocessed",
    "pending_alerts_redelivered",
)


def cold_start(env: Mapping[str, str]) -> tuple[ReconcileFunction, wiring.Telemetry]:
    """What the handler module builds once per container: the settings from `env` (a bad
    variable fails the cold start, named), powertools named after the service, and the function
    on its boto3 clients and alert destination."""
    settings = ReconcileFunctionSettings.from_env(env)
    telemetry = wiring.telemetry(
        settings.realtime.service_name, settings.realtime.metrics_namespace
    )
    function = ReconcileFunction.from_env(
        settings, env, logger=telemetry.logger, metrics=telemetry.metrics
    )
    return function, telemetry


class ReconcileIncomplete(Exception):
    """Objects of the window could not be processed: fail, so that the scheduler's retry runs
    the same window again (the ledger makes it skip what is done)."""


def scheduled_time(event: Mapping[str, Any], clock: Callable[[], float]) -> int:
    """The reconciliation's `now`: the scheduled event's `time`; for an invocation without one
    (by hand, a test), `clock()`. The only clock the reconciliation has."""
    value = event.get("time")
    t = parse_event_time(value) if isinstance(value, str) else None
    return t if t is not None else int(clock())


@dataclass
class ReconcileFunction:
    reconciler: Reconciler
    table: AthenaTable
    logger: Logger
    metrics: Metrics
    clock: Callable[[], float] = time.time  # only when an event carries no time

    @classmethod
    def build(
        cls,
        settings: ReconcileFunctionSettings,
        *,
        s3: S3Client,
        dynamodb: DynamoDBClient,
        athena: AthenaClient,
        logger: Logger,
        metrics: Metrics,
        sink: AlertSink | None = None,
    ) -> ReconcileFunction:
        parts = wiring.realtime_parts(settings.realtime, s3=s3, dynamodb=dynamodb, sink=sink)
        runner = AthenaQueryRunner(
            athena,
            workgroup=settings.athena.workgroup,
            output_location=settings.athena.output_location,
        )
        table = AthenaTable(settings.table_spec(), runner)
        reconciler = Reconciler(
            parts.processor,
            S3ObjectLister(s3),
            settings.layout,
            settings=settings.reconcile,
            accounts=settings.accounts,
            regions=settings.regions,
            table=table,
        )
        return cls(reconciler, table, logger, metrics)

    @classmethod
    def from_env(
        cls,
        settings: ReconcileFunctionSettings,
        env: Mapping[str, str],
        *,
        logger: Logger,
        metrics: Metrics,
    ) -> ReconcileFunction:
        """Built as the Lambda builds it at cold start (`wiring.lambda_aws`)."""
        aws = wiring.lambda_aws(env, "s3", "dynamodb", "athena")
        return cls.build(settings, **aws.clients, logger=logger, metrics=metrics, sink=aws.sink)

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        if "backfill_days" in event:
            return self.backfill(event)
        now = scheduled_time(event, self.clock)
        report = self.reconciler.run(now)
        self._publish(report)
        if report.failed:
            raise ReconcileIncomplete(
                f"{len(report.failed)} object(s) of {report.window.label} not processed: "
                + ", ".join(f"{k} ({r})" for k, r in report.failed[:10])
            )
        return {"window": report.window.label, **{k: report.stats[k] for k in CORE_METRICS}}

    def backfill(self, event: Mapping[str, Any]) -> dict[str, Any]:
        days = event.get("backfill_days")
        if not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= 3660:
            raise ValueError(f"backfill_days must be a whole number of days (1-3660): {days!r}")
        learner = wiring.learner(self.reconciler.processor.detector)
        r = self.reconciler
        pairs = discover_pairs(r.lister, r.layout, r.accounts, r.regions)
        report = backfill(self.table, learner, pairs, scheduled_time(event, self.clock), days)
        self._publish_backfill(report)
        return {
            "backfill": report.label,
            "rows": report.stats["rows"],
            "new_tuples": report.stats["new_tuples"],
            "principals": len(report.principals),
            "bytes_scanned": report.bytes_scanned,
        }

    def _publish(self, report: ReconcileReport) -> None:
        m, count = self.metrics, MetricUnit.Count
        stats = report.stats
        for name in CORE_METRICS:
            m.add_metric(name, count, stats[name])
        m.add_metric("bytes_scanned", MetricUnit.Bytes, stats["bytes_scanned"])
        for name, value in sorted(stats.items()):
            if name in CORE_METRICS or name == "bytes_scanned" or not value:
                continue
            m.add_metric(name, count, value)
        for warning in report.warnings:
            self.logger.warning(warning)
        for key, reason in report.failed:
            self.logger.error("object not processed", extra={"object_key": key, "reason": reason})
        delivery = report.delivery
        if delivery is not None and delivery.still_pending:
            m.add_metric(
                "alerts_pending_oldest_age_seconds",
                MetricUnit.Seconds,
                delivery.oldest_pending_age_s,
            )
        if delivery is not None and delivery.config_error:
            m.add_metric("sink_configuration_errors", count, 1)
            self.logger.error(
                "alert sink misconfigured; alerts stay pending",
                extra={"error": delivery.config_error},
            )
        if delivery is not None and delivery.circuit_opened:
            # As the real-time function says it: the hourly run's re-delivery failed too.
            m.add_metric("delivery_circuit_open", count, 1)
            self.logger.warning(
                "delivery_circuit_open: the hourly run stopped delivering; alerts stay pending "
                "for the next invocation",
                extra={"reason": delivery.circuit_open, "pending": delivery.still_pending},
            )
        self.logger.info(
            "reconciliation",
            extra={
                "window": report.window.label,
                **{k: stats[k] for k in (*CORE_METRICS, "bytes_scanned", "alerts")},
                "complete": report.complete,
            },
        )

    def _publish_backfill(self, report: BackfillReport) -> None:
        m, count = self.metrics, MetricUnit.Count
        m.add_metric("backfill_rows", count, report.stats["rows"])
        m.add_metric("backfill_new_tuples", count, report.stats["new_tuples"])
        m.add_metric("bytes_scanned", MetricUnit.Bytes, report.bytes_scanned)
        self.logger.info(
            "backfill",
            extra={
                "period": report.label,
                "rows": report.stats["rows"],
                "new_tuples": report.stats["new_tuples"],
                "principals": len(report.principals),
                "bytes_scanned": report.bytes_scanned,
            },
        )

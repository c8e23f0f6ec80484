"""The real-time function's parts, built once per container, and what it does per message.

The handler module stays a few lines: `cold_start` builds `RealtimeFunction` from validated
settings and its boto3 clients, with powertools named after the service, and the handler calls
`RealtimeLambda.handle`: `handle_message` per SQS record, under powertools' partial batch
response, or `handle_event` for a direct S3, SNS or EventBridge invocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws.notifications import (
    Notification,
    UnrecognizedNotification,
    is_sqs_event,
    parse_event,
    parse_sqs_record,
)
from ..ports import AlertSink, ObjectRef
from ..stores.dynamodb.baseline import DynamoDbBaseline
from ..usecases.ingest import ObjectOutcome, ObjectStatus, RealtimeProcessor
from . import wiring
from .settings import RealtimeSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client


def cold_start(env: Mapping[str, str]) -> RealtimeLambda:
    """What the handler module builds once per container: the settings from `env` (a bad
    variable fails the cold start, named), powertools named after the service, the function on
    its boto3 clients and alert destination, and the SQS batch processor."""
    settings = RealtimeSettings.from_env(env)
    telemetry = wiring.telemetry(settings.service_name, settings.metrics_namespace)
    function = RealtimeFunction.from_env(
        settings, env, logger=telemetry.logger, metrics=telemetry.metrics
    )
    return RealtimeLambda(
        function,
        telemetry,
        BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        telemetry.tracer.capture_method(function.handle_record),
    )


@dataclass(frozen=True, slots=True)
class RealtimeLambda:
    """The handler module's parts (`cold_start`) and what it does per invocation."""

    function: RealtimeFunction
    telemetry: wiring.Telemetry
    batch: BatchProcessor
    record_handler: Callable[[SQSRecord, LambdaContext], None]  # traced `handle_record`

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """An SQS batch gets a partial batch response: only the messages of failed objects are
        retried. A direct S3, SNS or EventBridge invocation raises to be retried."""
        if not is_sqs_event(event):
            self.function.handle_event(event)
            return {"batchItemFailures": []}
        with self.function.sqs_batch(event):  # the batch's ledger lookups and writes, batched
            response = process_partial_response(
                event=event,
                record_handler=self.record_handler,
                processor=self.batch,
                context=context,
            )
        return dict(response)


class ObjectFailed(Exception):
    """One or more objects of a message could not be processed: retry the message."""


class NotStarted(Exception):
    """Too little of the invocation is left to start this message: it is retried later."""


@dataclass
class RealtimeFunction:
    processor: RealtimeProcessor
    baseline: DynamoDbBaseline
    logger: Logger
    metrics: Metrics
    clock: Callable[[], float] = time.time  # only for the lag metric
    min_remaining_ms: int = 30_000
    # A delivery round may take the sink's whole retry budget plus its timeouts (Splunk HEC's
    # defaults: 30 s + 5 s to connect + 30 s to read). With less than that left, the invocation
    # does not start one: it could time out mid-batch, and a batch that times out is received
    # again, every message counting toward the dead-letter queue. The alerts wait in the outbox
    # for the next invocation and the hourly run. A function whose timeout is shorter than
    # twice that keeps half of what its first message had left instead, or it would never
    # deliver at all.
    delivery_reserve_ms: int = 70_000
    _first_remaining_ms: int | None = None  # what the batch's first message had left

    @classmethod
    def build(
        cls,
        settings: RealtimeSettings,
        *,
        s3: S3Client,
        dynamodb: DynamoDBClient,
        logger: Logger,
        metrics: Metrics,
        sink: AlertSink | None = None,
    ) -> RealtimeFunction:
        parts = wiring.realtime_parts(settings, s3=s3, dynamodb=dynamodb, sink=sink)
        return cls(
            parts.processor,
            parts.baseline,
            logger,
            metrics,
            min_remaining_ms=int(settings.min_remaining_seconds * 1000),
        )

    @classmethod
    def from_env(
        cls, settings: RealtimeSettings, env: Mapping[str, str], *, logger: Logger, metrics: Metrics
    ) -> RealtimeFunction:
        """Built as the Lambda builds it at cold start (`wiring.lambda_aws`)."""
        aws = wiring.lambda_aws(env, "s3", "dynamodb")
        return cls.build(settings, **aws.clients, logger=logger, metrics=metrics, sink=aws.sink)

    @contextmanager
    def sqs_batch(self, event: Mapping[str, Any]) -> Iterator[None]:
        """Around the messages of one SQS batch: the ledger is asked about all their objects in
        one request before, and told what was processed 25 objects a request (the rest after).
        A message that cannot be parsed is left to its own handling, which reports it."""
        refs: list[ObjectRef] = []
        for raw in event.get("Records") or []:
            try:
                refs.extend(parse_sqs_record(SQSRecord(raw)).objects)
            except (UnrecognizedNotification, KeyError, TypeError, AttributeError):
                continue
        with self._ledger_batch(refs):
            yield

    @contextmanager
    def _ledger_batch(self, refs: list[ObjectRef]) -> Iterator[None]:
        self._first_remaining_ms = None
        self.processor.begin_batch(refs)
        try:
            yield
        finally:
            report = self.processor.end_batch()
            self.metrics.add_metric("dynamodb_requests", MetricUnit.Count, report.requests)
            if report.unwritten:
                # The objects were processed and their alerts staged: only the ledger lacks them,
                # so a redelivery or the reconciliation reads them again (the claims keep that
                # from alerting twice).
                self.metrics.add_metric("ledger_unwritten", MetricUnit.Count, report.unwritten)
                self.logger.error(
                    "processed objects could not be recorded in the ledger",
                    extra={"unwritten": report.unwritten},
                )

    def handle_record(self, record: SQSRecord, lambda_context: LambdaContext) -> None:
        """powertools' record handler (it passes `lambda_context` by that name): one message,
        handed back when the invocation is nearly out of time (`handle_message`)."""
        self.handle_message(record, lambda_context.get_remaining_time_in_millis())

    def handle_message(self, record: SQSRecord, remaining_ms: int | None = None) -> None:
        """One SQS message: process every object it names; raise if any failed (retry it), or
        if less than `min_remaining_ms` of the invocation is left (`remaining_ms`) to start it:
        a batch of big objects then hands its tail back instead of timing out as a whole."""
        if remaining_ms is not None and remaining_ms < self.min_remaining_ms:
            self.metrics.add_metric("messages_deferred", MetricUnit.Count, 1)
            raise NotStarted(
                f"not started, handed back to the queue: {remaining_ms / 1000:.1f} s left of the "
                f"invocation, under MIN_REMAINING_SECONDS={self.min_remaining_ms / 1000:g}"
            )
        if remaining_ms is not None:
            if self._first_remaining_ms is None:
                self._first_remaining_ms = remaining_ms
            reserve = min(self.delivery_reserve_ms, self._first_remaining_ms // 2)
            if remaining_ms < reserve:
                self.processor.deliverer.hold(
                    f"{remaining_ms / 1000:.0f} s left of the invocation, under the "
                    f"{reserve / 1000:.0f} s a delivery round may take: the alerts wait in the "
                    "outbox for the next invocation"
                )
        self._handle(parse_sqs_record(record))

    def handle_event(self, event: Mapping[str, Any]) -> None:
        notification = parse_event(event)
        with self._ledger_batch(list(notification.objects)):
            self._handle(notification)

    def _handle(self, notification: Notification) -> None:
        for reason, n in notification.skipped.items():
            self.metrics.add_metric(f"objects_skipped.{reason}", MetricUnit.Count, n)
        failed: list[str] = []
        for ref in notification.objects:
            self.logger.append_keys(bucket=ref.bucket, object_key=ref.key)
            try:
                if not self._process(ref):
                    failed.append(ref.key)
            finally:
                self.logger.remove_keys(["bucket", "object_key"])
        if failed:
            raise ObjectFailed(f"{len(failed)} object(s) failed: {', '.join(failed)}")

    def _process(self, ref: ObjectRef) -> bool:
        try:
            outcome = self.processor.process(ref)
        except Exception:
            # Store errors after botocore's retries: nothing was recorded, so a retry is safe.
            self.metrics.add_metric("objects_failed.error", MetricUnit.Count, 1)
            self.logger.exception("object failed; its message will be retried")
            return False
        self._publish(outcome)
        return not outcome.failed

    def _publish(self, outcome: ObjectOutcome) -> None:
        m, log = self.metrics, self.logger
        count = MetricUnit.Count
        m.add_metric("dynamodb_requests", count, outcome.requests)
        if outcome.status is ObjectStatus.SKIPPED:
            m.add_metric(f"objects_skipped.{outcome.reason}", count, 1)
            log.info("object skipped", extra={"reason": outcome.reason})
            return
        if outcome.status is ObjectStatus.DUPLICATE:
            m.add_metric("objects_duplicate", count, 1)
            log.info("object already processed")
            return
        if outcome.status is ObjectStatus.INVALID:
            m.add_metric("objects_invalid", count, 1)
            log.warning("not a CloudTrail log key", extra={"error": outcome.detail})
            return
        if outcome.status is ObjectStatus.FAILED:
            m.add_metric(f"objects_failed.{outcome.reason}", count, 1)
            log.error("object failed", extra={"reason": outcome.reason, "error": outcome.detail})
            if not outcome.stats:
                return  # not read: nothing else to count
        else:
            m.add_metric("objects", count, 1)
        stats = outcome.stats
        m.add_metric("records", count, stats["records"])
        m.add_metric("new_tuples", count, stats["new_tuples"])
        for name, value in sorted(stats.items()):
            if name.startswith(("records_skipped.", "alerts.")) and value:
                m.add_metric(name, count, value)
        delivery = outcome.delivery
        if delivery is not None:
            m.add_metric("alerts_delivered", count, delivery.delivered)
            m.add_metric("alerts_dead_lettered", count, delivery.dead_lettered)
            m.add_metric("alerts_pending", count, delivery.still_pending)
            m.add_metric(
                "alerts_pending_oldest_age_seconds",
                MetricUnit.Seconds,
                delivery.oldest_pending_age_s,
            )
            if delivery.config_error:
                m.add_metric("sink_configuration_errors", count, 1)
                log.error(
                    "alert sink misconfigured; alerts stay pending",
                    extra={"error": delivery.config_error},
                )
            if delivery.circuit_opened:
                # Once an invocation: its later objects are detected and staged, not delivered.
                m.add_metric("delivery_circuit_open", count, 1)
                log.warning(
                    "delivery_circuit_open: no more delivery attempts in this invocation; "
                    "alerts stay pending for the next invocation and the hourly reconciliation",
                    extra={"reason": delivery.circuit_open, "pending": delivery.still_pending},
                )
        elif outcome.delivery_held:
            m.add_metric("deliveries_held", count, 1)
        if outcome.newest_event_time is not None:
            lag = max(0.0, self.clock() - outcome.newest_event_time)
            m.add_metric("lag_seconds", MetricUnit.Seconds, lag)
        log.info(
            "object processed" if not outcome.failed else "object detected, claims incomplete",
            extra={
                "records": stats["records"],
                "new_tuples": stats["new_tuples"],
                "alerts": len(outcome.alerts),
                "dynamodb_requests": outcome.requests,
            },
        )

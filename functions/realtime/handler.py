"""The real-time Lambda: notifications of new CloudTrail objects → detection → alerts.

Built once, at cold start, from the environment (`app/wiring.py`; a bad variable fails it, named).
SQS batches get a partial batch response: only the messages of failed objects are retried.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from cloudtrail_anomaly.app.realtime_function import RealtimeFunction
from cloudtrail_anomaly.app.settings import RealtimeSettings
from cloudtrail_anomaly.aws.notifications import is_sqs_event

settings = RealtimeSettings.from_env(os.environ)
logger = Logger(service=settings.service_name)
metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)
tracer = Tracer(service=settings.service_name)
function = RealtimeFunction.from_env(settings, os.environ, logger=logger, metrics=metrics)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    # Messages left when the invocation is nearly out of time are handed back for a retry.
    function.handle_message(record, lambda_context.get_remaining_time_in_millis())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not is_sqs_event(event):
        function.handle_event(event)  # direct S3 / SNS / EventBridge: raise to be retried
        return {"batchItemFailures": []}
    with function.sqs_batch(event):  # the batch's ledger lookups and writes, batched
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

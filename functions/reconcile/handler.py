"""The reconciliation Lambda: hourly, every delivered CloudTrail object is processed, and proven.

Scheduled by EventBridge every hour; the event's `time` is the reconciliation's `now`. A one-off
invocation with `{"backfill_days": 90}` learns the baseline from history through Athena.
Settings are validated and clients built once, at cold start (a bad variable fails it, named).
A run that leaves objects unprocessed raises, so the scheduler's retry runs the same window.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from cloudtrail_anomaly.app.reconcile_function import ReconcileFunction, ReconcileFunctionSettings
from cloudtrail_anomaly.aws import retry_config
from cloudtrail_anomaly.aws.secrets import splunk_sink_from_env, splunk_wanted

settings = ReconcileFunctionSettings.from_env(os.environ)
service = settings.realtime.service_name
logger = Logger(service=service)
metrics = Metrics(namespace=settings.realtime.metrics_namespace, service=service)
tracer = Tracer(service=service)
function = ReconcileFunction.build(
    settings,
    s3=boto3.client("s3", config=retry_config()),
    dynamodb=boto3.client("dynamodb", config=retry_config()),
    athena=boto3.client("athena", config=retry_config()),
    logger=logger,
    metrics=metrics,
    # The real-time function's sink: pending alerts and those of missed objects go to Splunk
    # HEC when SPLUNK_HEC_* is set (every variable checked now); else JSON lines in the log.
    sink=splunk_sink_from_env(os.environ, boto3_client=boto3.client)
    if splunk_wanted(os.environ)
    else None,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle(event)

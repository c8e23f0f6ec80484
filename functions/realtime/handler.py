"""The real-time Lambda: notifications of new CloudTrail objects → detection → alerts.

Built once, at cold start, from the environment (`app/realtime_function.cold_start`; a bad
variable fails it, named). SQS batches get a partial batch response: only the messages of failed
objects are retried; a direct S3, SNS or EventBridge invocation raises to be retried.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from cloudtrail_anomaly.app.realtime_function import cold_start

runtime = cold_start(os.environ)
function = runtime.function
logger, metrics, tracer = runtime.telemetry


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runtime.handle(event, context)

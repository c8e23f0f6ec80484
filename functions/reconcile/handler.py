"""The reconciliation Lambda: hourly, every delivered CloudTrail object is processed, and proven.

Scheduled by EventBridge every hour; the event's `time` is the reconciliation's `now`. A one-off
invocation with `{"backfill_days": 90}` learns the baseline from history through Athena. Built
once, at cold start, from the environment (`app/reconcile_function.cold_start`; a bad variable
fails it, named). A run that leaves objects unprocessed raises, so the scheduler's retry runs
the same window.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from cloudtrail_anomaly.app.reconcile_function import cold_start

function, (logger, metrics, tracer) = cold_start(os.environ)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle(event)

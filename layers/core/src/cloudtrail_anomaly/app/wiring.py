"""The composition root: the one place the core's parts are plugged together.

Every entry point builds from here: the CLI (`replay`, `baseline`, `backfill`), the real-time
Lambda (`realtime_function.py`) and the reconciliation Lambda (`reconcile_function.py`, which
runs missed objects through the very same `RealtimeParts` as the real-time function, and its
backfill through the same `learner`); both Lambdas' powertools come from `telemetry`. Clients are parameters; AWS adapters are imported only
by the functions that build them, so the CLI's local commands need no AWS package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from ..domain.detector import Detector
from ..domain.policy import AlertPolicy
from ..ports import AlertSink, Baseline, Enricher
from ..sinks import parse_flag
from ..sinks.jsonl import JsonLinesSink
from ..usecases.ingest import RealtimeProcessor
from .settings import Config, ReaderSettings, RealtimeSettings, load_config

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

    from ..stores.dynamodb.baseline import DynamoDbBaseline
    from ..stores.dynamodb.ledger import DynamoDbLedger


def detector(
    baseline: Baseline, config: Config, *, enricher: Enricher | None = None, alerting: bool = True
) -> Detector:
    """The detector every path runs: the config's detection settings and alert policy."""
    return Detector(
        baseline,
        AlertPolicy(config.policy, config.ignore),
        config.detection,
        enricher=enricher,
        alerting=alerting,
    )


def learner(live: Detector) -> Detector:
    """A detector that learns and never alerts (backfill), on the same baseline and settings."""
    return Detector(live.baseline, live.policy, live.settings, alerting=False)


def enricher(config: Config) -> Enricher | None:
    """AWS enrichment when `[enrichment]` turns it on (credentials from the usual boto3 chain);
    boto3 is imported only then, so the core runs without it (ImportError otherwise)."""
    if not (config.enrichment.organizations or config.enrichment.iam_roles):
        return None
    import boto3

    from ..aws.enrichment import AwsEnricher

    return AwsEnricher.from_session(boto3.Session(), config.enrichment)


@dataclass(frozen=True, slots=True)
class RealtimeParts:
    """What the real-time path is made of, built once per container."""

    processor: RealtimeProcessor
    baseline: DynamoDbBaseline
    ledger: DynamoDbLedger
    config: Config


def realtime_parts(
    settings: RealtimeSettings,
    *,
    s3: S3Client,
    dynamodb: DynamoDBClient,
    sink: AlertSink | None = None,
) -> RealtimeParts:
    """The real-time use case on DynamoDB and S3: the config file (`CONFIG_PATH`), the
    baseline, ledger and outbox tables, the sink (JSON lines in the log by default)."""
    # AWS adapters imported here: the CLI's local commands run without boto3.
    from ..aws.s3_source import S3ObjectSource
    from ..stores.dynamodb.baseline import DynamoDbBaseline
    from ..stores.dynamodb.ledger import DynamoDbLedger
    from ..stores.dynamodb.outbox import DynamoDbOutbox

    config = load_config(settings.config_path or None)
    if settings.max_object_bytes is not None:
        config = replace(config, reader=ReaderSettings(settings.max_object_bytes))
    baseline = DynamoDbBaseline(
        dynamodb,
        settings.baseline_table,
        cache_size=settings.cache_size,
        write_concurrency=settings.write_concurrency,
    )
    ledger = DynamoDbLedger(dynamodb, settings.ledger_table, settings.ledger_ttl_days)
    processor = RealtimeProcessor(
        detector(baseline, config, enricher=enricher(config)),
        S3ObjectSource(s3),
        ledger,
        sink or JsonLinesSink(sys.stdout.buffer),
        outbox=DynamoDbOutbox(dynamodb, settings.baseline_table),
        max_bytes=config.reader.max_object_bytes,
        meters=(baseline, ledger),
        claim_failures=baseline,
    )
    return RealtimeParts(processor, baseline, ledger, config)


class Telemetry(NamedTuple):
    """A function's powertools, one service name: structured logs, EMF metrics, X-Ray traces."""

    logger: Logger
    metrics: Metrics
    tracer: Tracer


def telemetry(service: str, namespace: str) -> Telemetry:
    """Built once per container, at cold start (powertools is imported only here: the CLI runs
    without it)."""
    from aws_lambda_powertools import Logger, Metrics, Tracer

    return Telemetry(
        Logger(service=service),
        Metrics(namespace=namespace, service=service),
        Tracer(service=service),
    )


class DestinationError(ValueError):
    """The environment names no usable alert destination, or more than one."""


class LambdaAws(NamedTuple):
    """What a function builds at cold start to reach AWS: a boto3 client per service, with the
    retry config, and the alert destination its environment names (None: JSON lines in the
    log)."""

    clients: dict[str, Any]
    sink: AlertSink | None


def lambda_aws(env: Mapping[str, str], *services: str) -> LambdaAws:
    """`LambdaAws` for `services` (`"s3"`, `"dynamodb"`, ...): `alert_sink_from_env` checks
    every destination variable now, so a bad one fails the cold start, named."""
    import boto3

    from ..aws import retry_config

    client: Callable[..., Any] = boto3.client  # typed per service name; any name here
    sink = alert_sink_from_env(env, client)
    return LambdaAws({s: client(s, config=retry_config()) for s in services}, sink)


def alert_sink_from_env(
    env: Mapping[str, str], boto3_client: Callable[..., Any]
) -> AlertSink | None:
    """The one alert destination a function's environment names: Splunk HEC (`SPLUNK_HEC_*`),
    Security Hub (`SECURITY_HUB_FINDINGS=true`) or an EventBridge bus (`EVENTBRIDGE_BUS_NAME`),
    HEC and EventBridge in `ALERT_FORMAT` (`alert` or `ocsf`); None when there is none (JSON
    lines in the function's log). Every variable is checked now, so a bad one fails the cold
    start, named. Several destinations at once are refused: the outbox marks an alert delivered
    once, so a second destination could not be told apart from a retry.

    A destination's modules are imported only when one of its variables is set: the Splunk
    path alone (requests, powertools Parameters) was ~0.13 s of every cold start without it."""
    found: dict[str, AlertSink] = {}
    if _any_set(env, "SPLUNK_HEC_"):
        from ..aws.secrets import TOKEN_ENV, splunk_sink_from_env, splunk_wanted
        from ..sinks.formatted import with_format

        if env.get("AWS_LAMBDA_FUNCTION_NAME") and env.get(TOKEN_ENV, "").strip():
            # Never quote it: the message goes to the log.
            raise DestinationError(
                f"{TOKEN_ENV} is set in the function's environment, which anyone allowed "
                "lambda:GetFunctionConfiguration can read: keep the token in Secrets Manager "
                "(SPLUNK_HEC_TOKEN_SECRET) or SSM (SPLUNK_HEC_TOKEN_PARAMETER)"
            )
        if splunk_wanted(env):
            hec = splunk_sink_from_env(env, boto3_client=boto3_client)
            found["Splunk HEC (SPLUNK_HEC_URL)"] = with_format(
                hec, env.get("ALERT_FORMAT", "").strip() or None
            )
    # The template always sets SECURITY_HUB_FINDINGS ("false" unless asked): a value that turns
    # the sink off is not worth its import; any other (on, or not a flag) is checked there.
    if (
        _any_set(env, "SECURITY_HUB_FINDINGS")
        and parse_flag(env["SECURITY_HUB_FINDINGS"]) is not False
    ):
        from ..sinks.security_hub import security_hub_sink_from_env

        hub = security_hub_sink_from_env(env, boto3_client)
        if hub is not None:
            found["Security Hub (SECURITY_HUB_FINDINGS)"] = hub
    if _any_set(env, "EVENTBRIDGE_BUS_NAME"):
        from ..sinks.eventbridge import eventbridge_sink_from_env

        bus = eventbridge_sink_from_env(env, boto3_client)
        if bus is not None:
            found["EventBridge (EVENTBRIDGE_BUS_NAME)"] = bus
    if len(found) > 1:
        raise DestinationError(f"one alert destination per deployment, not {' and '.join(found)}")
    return next(iter(found.values()), None)


def _any_set(env: Mapping[str, str], prefix: str) -> bool:
    """Whether a variable whose name starts with `prefix` has a value (blank counts as unset,
    as every destination's own check reads it)."""
    return any(value.strip() for name, value in env.items() if name.startswith(prefix))

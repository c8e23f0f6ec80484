"""The one alert destination a function's environment names (app/wiring.alert_sink_from_env)."""

from __future__ import annotations

import boto3
import pytest
from cloudtrail_anomaly.app.wiring import DestinationError, alert_sink_from_env

TOKEN = "0f8e7d6c-5b4a-4392-8170-destinations"
BASE = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
SPLUNK = {"SPLUNK_HEC_URL": "https://splunk.example.com:8088", "SPLUNK_HEC_TOKEN_SECRET": "hec"}
HUB = {"SECURITY_HUB_FINDINGS": "true", "SECURITY_HUB_ACCOUNT_ID": "123456789012"}
BUS = {"EVENTBRIDGE_BUS_NAME": "security-alerts"}


pytestmark = pytest.mark.usefixtures("aws")  # conftest's: every test on moto


def sink_name(env: dict[str, str]) -> str | None:
    sink = alert_sink_from_env({**BASE, **env}, boto3.client)
    return None if sink is None else type(sink).__name__


def test_no_destination_means_the_log() -> None:
    assert sink_name({}) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [(SPLUNK, "SecretTokenHecSink"), (HUB, "SecurityHubSink"), (BUS, "EventBridgeSink")],
)
def test_each_destination_alone(env: dict[str, str], expected: str) -> None:
    name = sink_name(env)
    assert name is not None
    sink = alert_sink_from_env({**BASE, **env}, boto3.client)
    inner = getattr(sink, "sink", None) or getattr(sink, "inner", None)
    assert expected in {name, type(inner).__name__ if inner is not None else ""}


def test_an_ocsf_format_wraps_hec_and_eventbridge() -> None:
    for env in (SPLUNK, BUS):
        sink = alert_sink_from_env({**BASE, **env, "ALERT_FORMAT": "ocsf"}, boto3.client)
        assert type(sink).__name__ == "Formatted", env


@pytest.mark.parametrize(("a", "b"), [(SPLUNK, HUB), (HUB, BUS), (SPLUNK, BUS)])
def test_two_destinations_are_refused_at_cold_start(a: dict[str, str], b: dict[str, str]) -> None:
    with pytest.raises(DestinationError, match="one alert destination per deployment"):
        alert_sink_from_env({**BASE, **a, **b}, boto3.client)


def test_a_token_in_a_functions_environment_is_refused_without_being_quoted() -> None:
    env = {
        **BASE,
        "AWS_LAMBDA_FUNCTION_NAME": "cloudtrail-anomaly-prod-realtime",
        "SPLUNK_HEC_URL": "https://splunk.example.com:8088",
        "SPLUNK_HEC_TOKEN": TOKEN,
    }
    with pytest.raises(DestinationError) as caught:
        alert_sink_from_env(env, boto3.client)
    assert TOKEN not in str(caught.value) and "SPLUNK_HEC_TOKEN_SECRET" in str(caught.value)
    # Locally (no Lambda), the variable is how the CLI takes the token.
    local = {k: v for k, v in env.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    assert alert_sink_from_env(local, boto3.client) is not None

"""The HEC token from Secrets Manager and SSM (moto), and the Splunk sink built from a Lambda's
environment: precise errors naming the variable, the token cached and re-read after a rotation,
and never in a message."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from botocore.config import Config
from cloudtrail_anomaly.aws.secrets import (
    SecretReader,
    SecretRef,
    SecretTokenHecSink,
    TokenError,
    hec_settings_from_env,
    splunk_sink_from_env,
    splunk_wanted,
    token_ref,
)
from cloudtrail_anomaly.domain.model import Severity
from cloudtrail_anomaly.ports import PendingAlert
from cloudtrail_anomaly.sinks import MinSeverity
from cloudtrail_anomaly.sinks.splunk_hec import HecSettingsError, SplunkHecSink
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.usecases.deliver import Deliverer

from tests.hec_server import HecServer
from tests.test_splunk_hec import TOKEN, FakeTime, make_alert

REGION = "us-east-1"
SECRET = "cloudtrail-anomaly/splunk-hec-token"
PARAMETER = "/cloudtrail-anomaly/splunk-hec-token"
URL = "https://splunk.example.com:8088/services/collector/event"


class CountingClients:
    """A boto3 client factory that counts the reads each client makes."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self.reads = 0

    def __call__(self, service: str) -> Any:
        self.made.append(service)
        client = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        client.meta.events.register("before-call.*.*", self._count)
        return client

    def _count(self, **kwargs: Any) -> None:
        self.reads += 1


def secretsmanager() -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def ssm() -> Any:
    return boto3.client("ssm", region_name=REGION)


# -- reading the token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored", [TOKEN, f"  {TOKEN}\n", orjson.dumps({"token": TOKEN, "url": URL}).decode()]
)
def test_the_token_from_a_secret_string_or_its_json_token_key(aws: None, stored: str) -> None:
    secretsmanager().create_secret(Name=SECRET, SecretString=stored)
    ref = SecretRef("secretsmanager", SECRET, "SPLUNK_HEC_TOKEN_SECRET")
    assert SecretReader(CountingClients())(ref) == TOKEN


def test_the_token_from_a_binary_secret(aws: None) -> None:
    secretsmanager().create_secret(Name=SECRET, SecretBinary=TOKEN.encode())
    ref = SecretRef("secretsmanager", SECRET, "SPLUNK_HEC_TOKEN_SECRET")
    assert SecretReader(CountingClients())(ref) == TOKEN


def test_the_token_from_an_ssm_securestring(aws: None) -> None:
    ssm().put_parameter(Name=PARAMETER, Value=TOKEN, Type="SecureString")
    clients = CountingClients()
    ref = SecretRef("ssm", PARAMETER, "SPLUNK_HEC_TOKEN_PARAMETER")
    assert SecretReader(clients)(ref) == TOKEN
    assert clients.made == ["ssm"]  # only the store the environment names costs a client


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (orjson.dumps({"hec": TOKEN}).decode(), 'a JSON secret needs a "token" key'),
        (orjson.dumps({"token": 42, "x": TOKEN}).decode(), 'a JSON secret needs a "token" key'),
        ("{" + TOKEN, "starts with '{' but is not valid JSON"),
        ('{"token": "   "}', "the token is empty"),
    ],
)
def test_a_secret_without_a_usable_token_says_which_and_never_quotes_it(
    aws: None, stored: str, message: str
) -> None:
    secretsmanager().create_secret(Name=SECRET, SecretString=stored)
    ref = SecretRef("secretsmanager", SECRET, "SPLUNK_HEC_TOKEN_SECRET")
    with pytest.raises(TokenError) as err:
        SecretReader(CountingClients())(ref)
    assert str(err.value).startswith(f"SPLUNK_HEC_TOKEN_SECRET={SECRET}: ")
    assert message in str(err.value)
    assert TOKEN not in str(err.value) and err.value.permanent


@pytest.mark.parametrize(
    ("store", "variable", "code"),
    [
        ("secretsmanager", "SPLUNK_HEC_TOKEN_SECRET", "ResourceNotFoundException"),
        ("ssm", "SPLUNK_HEC_TOKEN_PARAMETER", "ParameterNotFound"),
    ],
)
def test_a_missing_secret_is_a_permanent_error_naming_the_variable(
    aws: None, store: Any, variable: str, code: str
) -> None:
    with pytest.raises(TokenError) as err:
        SecretReader(CountingClients())(SecretRef(store, "nope", variable))
    assert str(err.value).startswith(f"{variable}=nope: cannot read the token ({code}")
    assert err.value.permanent


def test_an_unreachable_store_is_a_transient_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    quick = Config(connect_timeout=0.2, read_timeout=0.2, retries={"total_max_attempts": 1})

    def nowhere(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service, region_name=REGION, endpoint_url="http://127.0.0.1:9", config=quick
        )

    ref = SecretRef("secretsmanager", SECRET, "SPLUNK_HEC_TOKEN_SECRET")
    with pytest.raises(TokenError) as err:
        SecretReader(nowhere)(ref)
    assert not err.value.permanent
    assert "cannot read the token" in str(err.value)


def test_the_token_is_cached_and_read_again_when_forgotten(aws: None) -> None:
    secretsmanager().create_secret(Name=SECRET, SecretString="old-token")
    clients = CountingClients()
    reader = SecretReader(clients, max_age=300)
    ref = SecretRef("secretsmanager", SECRET, "SPLUNK_HEC_TOKEN_SECRET")
    assert [reader(ref) for _ in range(3)] == ["old-token"] * 3
    assert clients.reads == 1
    secretsmanager().put_secret_value(SecretId=SECRET, SecretString="new-token")
    assert reader(ref) == "old-token"  # within max_age
    reader.forget(ref)
    assert reader(ref) == "new-token"
    assert reader(ref) == "new-token" and clients.reads == 2


# -- settings from the environment -----------------------------------------------------------------


def test_settings_from_env_read_the_token_from_the_secret(aws: None) -> None:
    secretsmanager().create_secret(
        Name=SECRET, SecretString=orjson.dumps({"token": TOKEN}).decode()
    )
    env = {
        "SPLUNK_HEC_URL": URL,
        "SPLUNK_HEC_TOKEN_SECRET": SECRET,
        "SPLUNK_HEC_INDEX": "security",
        "SPLUNK_HEC_SOURCETYPE": "aws:anomaly",
        "SPLUNK_HEC_GZIP": "true",
    }
    settings = hec_settings_from_env(env, SecretReader(CountingClients()))
    assert (settings.url, settings.token, settings.index) == (
        "https://splunk.example.com:8088",
        TOKEN,
        "security",
    )
    assert (settings.sourcetype, settings.gzip) == ("aws:anomaly", True)
    assert TOKEN not in repr(settings)


def test_settings_from_env_locally_take_the_token_itself() -> None:
    def no_aws(ref: SecretRef) -> str:
        raise AssertionError("no secret named, nothing to read")

    settings = hec_settings_from_env({"SPLUNK_HEC_URL": URL, "SPLUNK_HEC_TOKEN": TOKEN}, no_aws)
    assert settings.token == TOKEN


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPLUNK_HEC_TOKEN_SECRET": SECRET}, "SPLUNK_HEC_URL is not set"),
        ({"SPLUNK_HEC_URL": URL}, "no HEC token: set SPLUNK_HEC_TOKEN_SECRET"),
        (
            {
                "SPLUNK_HEC_URL": URL,
                "SPLUNK_HEC_TOKEN_SECRET": SECRET,
                "SPLUNK_HEC_TOKEN_PARAMETER": PARAMETER,
            },
            "both SPLUNK_HEC_TOKEN_SECRET and SPLUNK_HEC_TOKEN_PARAMETER are set",
        ),
        (
            {"SPLUNK_HEC_URL": URL, "SPLUNK_HEC_TOKEN": TOKEN, "SPLUNK_HEC_GZIP": "maybe"},
            "SPLUNK_HEC_GZIP='maybe': expected true or false",
        ),
        (
            {"SPLUNK_HEC_URL": "splunk:8088", "SPLUNK_HEC_TOKEN": TOKEN},
            "must start with https://",
        ),
        (
            {"SPLUNK_HEC_URL": URL, "SPLUNK_HEC_TOKEN": TOKEN, "SPLUNK_MIN_SEVERITY": "urgent"},
            "SPLUNK_MIN_SEVERITY='urgent': must be one of informational, low",
        ),
    ],
)
def test_a_bad_environment_is_refused_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    def no_aws(ref: SecretRef) -> str:
        raise AssertionError("the environment is checked before any secret is read")

    def no_clients(service: str) -> Any:
        raise AssertionError("the environment is checked before any client is made")

    with pytest.raises(HecSettingsError, match=message) as err:
        splunk_sink_from_env(env, boto3_client=no_clients)
    if "SPLUNK_MIN_SEVERITY" not in env:
        with pytest.raises(HecSettingsError, match=message):
            hec_settings_from_env(env, no_aws)
    assert TOKEN not in str(err.value)


def test_which_environment_asks_for_splunk() -> None:
    assert not splunk_wanted({})
    assert not splunk_wanted({"SPLUNK_HEC_URL": "", "SPLUNK_HEC_TOKEN_SECRET": ""})  # the template
    assert splunk_wanted({"SPLUNK_HEC_URL": URL})
    assert splunk_wanted({"SPLUNK_HEC_TOKEN_PARAMETER": PARAMETER})
    assert token_ref({"SPLUNK_HEC_TOKEN": TOKEN}) is None
    assert token_ref({"SPLUNK_HEC_TOKEN_PARAMETER": PARAMETER}) == SecretRef(
        "ssm", PARAMETER, "SPLUNK_HEC_TOKEN_PARAMETER"
    )


# -- the sink a Lambda builds -------------------------------------------------------------------------


@pytest.fixture
def hec() -> Iterator[HecServer]:
    with HecServer(TOKEN) as server:
        yield server


def pending(n: int) -> list[PendingAlert]:
    return [PendingAlert.of(make_alert(i)) for i in range(n)]


def test_the_lambda_sink_reads_the_secret_once_and_delivers(aws: None, hec: HecServer) -> None:
    secretsmanager().create_secret(Name=SECRET, SecretString=TOKEN)
    clients = CountingClients()
    env = {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN_SECRET": SECRET}
    sink = splunk_sink_from_env(env, boto3_client=clients)
    assert isinstance(sink, SecretTokenHecSink) and clients.made == []  # nothing read yet
    first, second = pending(4)[:2], pending(4)[2:]
    assert sink.deliver(first).delivered == [a.alert_id for a in first]
    assert sink.deliver(second).delivered == [a.alert_id for a in second]
    assert clients.reads == 1
    assert hec.alert_counts() == {a.alert_id: 1 for a in pending(4)}
    assert len({r.client_port for r in hec.event_requests()}) == 1  # one session throughout


def test_a_rotated_token_is_picked_up_after_the_403_it_causes(aws: None, hec: HecServer) -> None:
    secretsmanager().create_secret(Name=SECRET, SecretString=TOKEN)
    env = {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN_SECRET": SECRET}
    t = FakeTime()
    sink = splunk_sink_from_env(env, boto3_client=CountingClients(), sleep=t.sleep, clock=t.clock)
    outbox = MemoryOutbox()
    outbox.stage(pending(1))
    assert Deliverer(outbox, sink).deliver_pending().delivered == 1
    # Rotation: Splunk takes the new token only; the container still holds the old one.
    secretsmanager().put_secret_value(SecretId=SECRET, SecretString="rotated-token")
    hec.token = "rotated-token"
    outbox.stage(pending(3)[1:])
    refused = Deliverer(outbox, sink).deliver_pending()
    assert "HTTP 403 code 4" in refused.config_error and refused.still_pending == 2
    done = Deliverer(outbox, sink).deliver_pending()
    assert (done.delivered, done.still_pending, done.config_error) == (2, 0, "")
    assert hec.duplicates() == 0 and len(hec.alert_counts()) == 3


def test_a_missing_secret_keeps_alerts_pending_as_a_configuration_error(
    aws: None, hec: HecServer, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN_SECRET": "missing"}
    sink = splunk_sink_from_env(env, boto3_client=CountingClients())
    outbox = MemoryOutbox()
    outbox.stage(pending(2))
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            done = Deliverer(outbox, sink).deliver_pending()
            assert done.still_pending == 2
            assert "SPLUNK_HEC_TOKEN_SECRET=missing: cannot read the token" in done.config_error
    assert len(caplog.records) == 1  # logged once
    assert hec.requests == []


def test_the_min_severity_variable_puts_a_floor_in_front(hec: HecServer) -> None:
    env = {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN": TOKEN, "SPLUNK_MIN_SEVERITY": "High"}
    sink = splunk_sink_from_env(env)
    assert isinstance(sink, MinSeverity) and isinstance(sink.sink, SplunkHecSink)
    low = PendingAlert.of(make_alert(0, severity=Severity.LOW))
    high = PendingAlert.of(make_alert(1, severity=Severity.HIGH))
    report = sink.deliver([low, high])
    assert sorted(report.delivered) == sorted([low.alert_id, high.alert_id])
    assert list(hec.alert_counts()) == [high.alert_id]


def test_the_token_is_in_no_repr_log_or_reason(
    aws: None, hec: HecServer, caplog: pytest.LogCaptureFixture
) -> None:
    secretsmanager().create_secret(
        Name=SECRET, SecretString=orjson.dumps({"token": TOKEN}).decode()
    )
    hec.faults.echo_authorization = True
    hec.token = "another-token"  # every request is refused, and the server quotes the header
    env = {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN_SECRET": SECRET}
    # Our loggers only: botocore at DEBUG logs response bodies, the secret's value included.
    with caplog.at_level(logging.DEBUG, logger="cloudtrail_anomaly"):
        sink = splunk_sink_from_env(env, boto3_client=CountingClients())
        report = sink.deliver(pending(2))
    assert "HTTP 403" in report.config_error
    assert isinstance(sink, SecretTokenHecSink) and sink.sink is not None
    texts = [repr(sink), repr(sink.sink), repr(sink.sink.settings), str(report), caplog.text]
    assert TOKEN not in "\n".join(texts)


def test_a_secret_holding_more_than_the_token_is_a_configuration_error_not_a_leak(
    aws: None, hec: HecServer, caplog: pytest.LogCaptureFixture
) -> None:
    # "Splunk <token>" pasted whole: HTTP could not carry it, and the HTTP library's error
    # would quote it; the sink refuses it once, without saying it, and keeps the alerts.
    secretsmanager().create_secret(Name=SECRET, SecretString=f"Splunk {TOKEN}")
    env = {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN_SECRET": SECRET}
    sink = splunk_sink_from_env(env, boto3_client=CountingClients())
    outbox = MemoryOutbox()
    outbox.stage(pending(2))
    with caplog.at_level(logging.DEBUG, logger="cloudtrail_anomaly"):
        done = Deliverer(outbox, sink).deliver_pending()
    assert done.still_pending == 2 and "without 'Splunk '" in done.config_error
    assert hec.requests == []
    texts = [str(done), caplog.text, *(a.last_error for a in outbox.pending())]
    assert TOKEN not in "\n".join(texts)


def test_a_token_pasted_into_another_variable_is_not_quoted_back(hec: HecServer) -> None:
    for env in (
        {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN": TOKEN, "SPLUNK_HEC_GZIP": TOKEN.upper()},
        {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN_SECRET": "s", "SPLUNK_HEC_TOKEN": TOKEN,
         "SPLUNK_HEC_USE_ACK": TOKEN},
    ):  # fmt: skip
        with pytest.raises(HecSettingsError) as err:
            splunk_sink_from_env(env, boto3_client=CountingClients())
        assert "<token>" in str(err.value) and TOKEN.lower() not in str(err.value).lower()

"""The Security Hub sink on moto: alerts imported as ASFF findings, at most 100 a call, one
finding per alert however often it is sent; a finding Security Hub fails is dead-lettered with
its reason (or kept pending when the code says to try again), an invalid request is split until
the refused finding is alone, and a misconfigured or unreachable Security Hub keeps everything
pending. Through the outbox and the Deliverer like every sink."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cloudtrail_anomaly.formats.asff import product_arn, to_asff
from cloudtrail_anomaly.sinks import as_pending
from cloudtrail_anomaly.sinks.security_hub import (
    SecurityHubSettingsError,
    SecurityHubSink,
    security_hub_sink_from_env,
)
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.usecases.deliver import Deliverer

from tests import alert_samples

REGION = "us-east-1"
HOME = "123456789012"  # moto's default account: the deployment's own
demo_alerts_file = alert_samples.demo_alerts_file
emitted_alerts = alert_samples.emitted_alerts


@pytest.fixture
def securityhub(aws: None) -> Iterator[Any]:
    client = boto3.client("securityhub", region_name=REGION)
    client.enable_security_hub()
    yield client


def findings_in(client: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("get_findings").paginate():
        out.update({f["Id"]: f for f in page["Findings"]})
    return out


class Counting:
    """The real (moto) client, counting calls and their sizes; `without_resources` ids are sent
    with no resource, which Security Hub refuses for that finding alone."""

    def __init__(self, client: Any, without_resources: frozenset[str] = frozenset()) -> None:
        self.client = client
        self.without_resources = without_resources
        self.calls: list[int] = []

    def batch_import_findings(self, *, Findings: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        self.calls.append(len(Findings))
        sent = [
            {**f, "Resources": []} if f["Id"] in self.without_resources else dict(f)
            for f in Findings
        ]
        return self.client.batch_import_findings(Findings=sent)  # type: ignore[no-any-return]


class Scripted:
    """A Security Hub that answers each call with the next scripted error or failure list."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def batch_import_findings(self, *, Findings: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        self.calls.append([f["Id"] for f in Findings])
        answer = self.answers.pop(0) if self.answers else {}
        if callable(answer):
            answer = answer(Findings)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]


def client_error(code: str, message: str = "no") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "BatchImportFindings")


def sink(client: Any, **kw: Any) -> SecurityHubSink:
    return SecurityHubSink(client, home_account=HOME, region=REGION, **kw)


def test_every_alert_becomes_one_finding_at_most_100_a_call(
    securityhub: Any, emitted_alerts: list[dict[str, Any]]
) -> None:
    pending = as_pending(emitted_alerts)
    assert len(pending) > 100
    counting = Counting(securityhub)
    report = sink(counting).deliver(pending)
    assert report.delivered == [a.alert_id for a in pending]
    assert (report.dead_lettered, report.pending, report.config_error) == ({}, {}, "")
    assert max(counting.calls) == 100 and sum(counting.calls) == len(pending)
    # Sent again (at least once delivery): the same findings, updated, none added.
    sink(securityhub).deliver(pending[:5])
    stored = findings_in(securityhub)
    assert set(stored) == {a.alert_id for a in pending}
    first = stored[pending[0].alert_id]
    assert first["ProductArn"] == product_arn(REGION, HOME)
    assert first["AwsAccountId"] == HOME
    assert first["Severity"]["Label"] == pending[0].severity.upper()


def test_findings_go_to_the_member_account_when_the_deployment_allows_it(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    alert = emitted_alerts[0]
    mine = to_asff(alert, home_account=HOME, region=REGION)
    theirs = to_asff(alert, home_account=HOME, region=REGION, member_accounts=True)
    assert mine["AwsAccountId"] == HOME
    assert theirs["AwsAccountId"] == alert["account_id"]
    assert {
        "Type": "AwsAccount",
        "Id": f"AWS::::Account:{alert['account_id']}",
        "Partition": "aws",
        "Region": REGION,
    } in mine["Resources"]
    assert mine["Resources"][0]["Id"] == alert["principal"]["arn"]
    assert mine["ProductFields"]["cloudtrail-anomaly/alert_id"] == alert["alert_id"]


def test_a_finding_security_hub_fails_is_dead_lettered_with_its_reason(
    securityhub: Any, emitted_alerts: list[dict[str, Any]]
) -> None:
    pending = as_pending(emitted_alerts[:4])
    bad = pending[1].alert_id
    report = sink(Counting(securityhub, frozenset({bad}))).deliver(pending)
    assert report.delivered == [a.alert_id for a in pending if a.alert_id != bad]
    assert list(report.dead_lettered) == [bad]
    assert "Security Hub refused the finding" in report.dead_lettered[bad]
    assert "at least one resource" in report.dead_lettered[bad]
    assert set(findings_in(securityhub)) == set(report.delivered)


def test_a_finding_failed_for_a_passing_reason_stays_pending(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    pending = as_pending(emitted_alerts[:3])
    failed = {
        "FailedFindings": [
            {"Id": pending[2].alert_id, "ErrorCode": "InternalError", "ErrorMessage": "try later"}
        ]
    }
    report = sink(Scripted([failed])).deliver(pending)
    assert report.delivered == [pending[0].alert_id, pending[1].alert_id]
    assert report.pending == {pending[2].alert_id: "Security Hub InternalError: try later"}


def test_an_invalid_request_is_split_until_the_refused_finding_is_alone(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    pending = as_pending(emitted_alerts[:8])
    bad = pending[5].alert_id

    def answer(findings: Sequence[Mapping[str, Any]]) -> Any:
        ids = [f["Id"] for f in findings]
        return client_error("InvalidInputException", "Invalid Title") if bad in ids else {}

    scripted = Scripted([answer] * 10)
    report = sink(scripted).deliver(pending)
    assert sorted(report.delivered) == sorted(a.alert_id for a in pending if a.alert_id != bad)
    assert report.dead_lettered == {
        bad: "Security Hub refused the finding: Security Hub InvalidInputException: Invalid Title"
    }
    assert scripted.calls[0] == [a.alert_id for a in pending]
    assert [bad] in scripted.calls


@pytest.mark.parametrize("code", ["InvalidAccessException", "AccessDeniedException"])
def test_security_hub_off_or_forbidden_is_a_configuration_error(
    code: str, emitted_alerts: list[dict[str, Any]]
) -> None:
    pending = as_pending(emitted_alerts[:150])
    scripted = Scripted([client_error(code, "Account is not subscribed to AWS Security Hub")])
    report = sink(scripted).deliver(pending)
    assert len(scripted.calls) == 1  # one request, then stop
    assert report.delivered == [] and report.dead_lettered == {}
    assert set(report.pending) == {a.alert_id for a in pending}
    assert report.config_error.startswith(f"Security Hub {code}")


def test_throttling_leaves_the_rest_pending_for_the_next_round(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    pending = as_pending(emitted_alerts[:150])
    report = sink(Scripted([{}, client_error("ThrottlingException", "slow down")])).deliver(pending)
    assert report.delivered == [a.alert_id for a in pending[:100]]
    assert set(report.pending) == {a.alert_id for a in pending[100:]}
    assert report.config_error == ""


def test_an_unreachable_security_hub_keeps_everything_pending(
    emitted_alerts: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client(
        "securityhub",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    pending = as_pending(emitted_alerts[:3])
    report = sink(client).deliver(pending)
    assert report.delivered == []
    assert set(report.pending) == {a.alert_id for a in pending}
    assert all(r.startswith("Security Hub unreachable") for r in report.pending.values())


def test_through_the_outbox_delivered_and_dead_letters_are_kept(
    securityhub: Any, emitted_alerts: list[dict[str, Any]]
) -> None:
    outbox = MemoryOutbox()
    pending = as_pending(emitted_alerts[:5])
    outbox.stage(pending)
    bad = pending[0].alert_id
    done = Deliverer(outbox, sink(Counting(securityhub, frozenset({bad})))).deliver_pending()
    assert (done.delivered, done.dead_lettered, done.still_pending) == (4, 1, 0)
    (dead, reason) = outbox.dead_letters()[0]
    assert dead.alert_id == bad and "at least one resource" in reason
    assert outbox.pending() == []


def test_the_deployment_turns_the_sink_on_from_the_environment() -> None:
    made: list[tuple[str, str]] = []

    def client(service: str, region_name: str) -> object:
        made.append((service, region_name))
        return object()

    base = {"AWS_REGION": REGION, "SECURITY_HUB_ACCOUNT_ID": HOME}
    assert security_hub_sink_from_env(base, client) is None
    on = security_hub_sink_from_env({**base, "SECURITY_HUB_FINDINGS": "true"}, client)
    assert on is not None and (on.home_account, on.region, on.member_accounts) == (
        HOME,
        REGION,
        False,
    )
    assert made == [("securityhub", REGION)]
    member = security_hub_sink_from_env(
        {**base, "SECURITY_HUB_FINDINGS": "true", "SECURITY_HUB_MEMBER_ACCOUNTS": "true"}, client
    )
    assert member is not None and member.member_accounts
    with pytest.raises(SecurityHubSettingsError, match="SECURITY_HUB_ACCOUNT_ID"):
        security_hub_sink_from_env({"SECURITY_HUB_FINDINGS": "true", "AWS_REGION": REGION}, client)
    # Off in every spelling a flag has; a value that is no flag fails, named, as Splunk's do.
    for off in ("false", "0", "No", " off "):
        assert security_hub_sink_from_env({**base, "SECURITY_HUB_FINDINGS": off}, client) is None
    for name in ("SECURITY_HUB_FINDINGS", "SECURITY_HUB_MEMBER_ACCOUNTS"):
        with pytest.raises(
            SecurityHubSettingsError, match=f"{name}='ture': expected true or false"
        ):
            security_hub_sink_from_env(
                {**base, "SECURITY_HUB_FINDINGS": "true", name: "ture"}, client
            )

"""Record normalization: the principal of every userIdentity type, event times, actions, skips.

Literal records (in the manner of panther-analysis rule tests) pin each identity type; the
fixture files show the same code on real and hand-edited CloudTrail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from cloudtrail_anomaly.domain.events import (
    RecordSkipped,
    account_of_identity,
    is_account_id,
    normalize,
    normalize_action,
    parse_event_time,
    principal_of,
)
from cloudtrail_anomaly.domain.model import Principal

from tests.builders import ACCOUNT, assumed_role, record, user
from tests.helpers import (
    EVENT_VERSION_1_0,
    INSIGHT,
    OTRF,
    SERVICE_EVENT,
    STRATUS_FEDERATION,
    TRAILSCRAPER,
    fixture_records,
)

T_2024 = 1_717_200_000  # 2024-06-01T00:00:00Z


def _principal(identity: Any, **extra: Any) -> Principal:
    doc = record(**extra)
    if identity is _ABSENT:
        del doc["userIdentity"]
    else:
        doc["userIdentity"] = identity
    return principal_of(doc)


_ABSENT = object()


# -- every userIdentity type -----------------------------------------------------------------


def test_assumed_role_with_session_issuer() -> None:
    ui = assumed_role("deploy", "ci-run-42")
    ui["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/teams/deploy"
    p = _principal(ui)
    assert p == Principal(
        type="AssumedRole",
        key=f"arn:aws:iam::{ACCOUNT}:role/teams/deploy",  # the issuer's ARN, path included
        name="deploy",
        session="ci-run-42",
        issuer_principal_id="AROAEXAMPLE",
        is_service=False,
    )


def test_assumed_role_without_issuer_rebuilds_the_role_arn() -> None:
    ui = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:alice@example.com",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice@example.com",
        "accountId": ACCOUNT,
    }
    p = _principal(ui)
    assert p.key == f"arn:aws:iam::{ACCOUNT}:role/Admin"
    assert (p.type, p.name, p.session, p.is_service) == (
        "AssumedRole",
        "Admin",
        "alice@example.com",
        False,
    )


def test_assumed_role_with_empty_issuer_also_rebuilds() -> None:
    ui = assumed_role("Admin", "bob")
    ui["sessionContext"]["sessionIssuer"] = {}
    assert _principal(ui).key == f"arn:aws:iam::{ACCOUNT}:role/Admin"


def test_assumed_role_with_neither_issuer_nor_arn_keeps_the_role_id() -> None:
    ui = {"type": "AssumedRole", "principalId": "AROAXYZ:sess", "accountId": ACCOUNT}
    p = _principal(ui)
    assert p.key == f"assumed-role:{ACCOUNT}:AROAXYZ"
    assert p.session == "sess"


def test_iam_user() -> None:
    p = _principal(user("alice"))
    assert p == Principal(type="IAMUser", key=f"arn:aws:iam::{ACCOUNT}:user/alice", name="alice")


def test_iam_user_console_session_with_empty_session_issuer() -> None:
    ui = user("pedro")
    ui["sessionContext"] = {
        "webIdFederationData": {},
        "sessionIssuer": {},
        "attributes": {"mfaAuthenticated": "true", "creationDate": "2020-09-13T17:16:47Z"},
    }
    p = _principal(ui)
    assert p.key == f"arn:aws:iam::{ACCOUNT}:user/pedro"
    assert p.type == "IAMUser"
    assert p.session == ""


def test_iam_user_without_arn_is_keyed_by_name() -> None:
    ui = {"type": "IAMUser", "userName": "carol", "accountId": ACCOUNT, "principalId": "AIDA1"}
    assert _principal(ui).key == f"arn:aws:iam::{ACCOUNT}:user/carol"
    ui = {"type": "IAMUser", "accountId": ACCOUNT, "principalId": "AIDA1"}
    assert _principal(ui).key == f"iam-user:{ACCOUNT}:AIDA1"


def test_root() -> None:
    ui = {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "",
    }
    assert _principal(ui) == Principal(type="Root", key=f"arn:aws:iam::{ACCOUNT}:root", name="root")
    del ui["arn"]
    assert _principal(ui).key == f"arn:aws:iam::{ACCOUNT}:root"


def test_federated_user() -> None:
    ui = {
        "type": "FederatedUser",
        "principalId": f"{ACCOUNT}:bob",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        "accountId": ACCOUNT,
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": "AIDAISSUER",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/broker",
                "accountId": ACCOUNT,
                "userName": "broker",
            }
        },
    }
    p = _principal(ui)
    assert (p.type, p.key, p.name, p.issuer_principal_id) == (
        "FederatedUser",
        f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        "bob",
        "AIDAISSUER",
    )
    del ui["arn"]
    assert _principal(ui).key == f"federated-user:{ACCOUNT}:bob"


def test_aws_account_is_keyed_by_the_calling_account_and_caller() -> None:
    ui = {
        "type": "AWSAccount",
        "principalId": "AROAEXAMPLE:lambda-name",
        "accountId": "111122223333",
    }
    p = _principal(ui)
    assert (p.type, p.key, p.name, p.session) == (
        "AWSAccount",
        "aws-account:111122223333:AROAEXAMPLE",
        "111122223333",
        "lambda-name",
    )
    assert _principal({"type": "AWSAccount", "accountId": "111122223333"}).key == (
        "aws-account:111122223333"
    )


def test_aws_service_is_a_service_principal() -> None:
    p = _principal({"type": "AWSService", "invokedBy": "config.amazonaws.com"})
    assert p == Principal(
        type="AWSService",
        key="service:config.amazonaws.com",
        name="config.amazonaws.com",
        is_service=True,
    )


def test_aws_service_without_invoked_by_falls_back_to_the_event_source() -> None:
    p = _principal({"type": "AWSService"}, action="sts.amazonaws.com:AssumeRole")
    assert (p.key, p.is_service) == ("service:sts.amazonaws.com", True)


def test_saml_user() -> None:
    ui = {
        "type": "SAMLUser",
        "principalId": "SampleUkh1i4+ExamplexL/jEvs=:SamlExample",
        "userName": "SamlExample",
        "identityProvider": "bdGOnTesti4+ci9ExampleKRIkYW80=",
    }
    p = _principal(ui)
    assert (p.type, p.key, p.name, p.is_service) == (
        "SAMLUser",
        "saml:bdGOnTesti4+ci9ExampleKRIkYW80=:SamlExample",
        "SamlExample",
        False,
    )


def test_web_identity_user() -> None:
    ui = {
        "type": "WebIdentityUser",
        "principalId": "accounts.google.com:app.apps.googleusercontent.com:1234567890",
        "userName": "1234567890",
        "identityProvider": "accounts.google.com",
    }
    p = _principal(ui)
    assert (p.type, p.key, p.name) == (
        "WebIdentityUser",
        "web-identity:accounts.google.com:1234567890",
        "1234567890",
    )


def test_identity_center_user_is_keyed_by_on_behalf_of() -> None:
    ui = {
        "type": "IdentityCenterUser",
        "accountId": ACCOUNT,
        "arn": "",
        "onBehalfOf": {
            "userId": "544894e8-80c1-707f-60e3-3ba6510dfac1",
            "identityStoreArn": f"arn:aws:identitystore::{ACCOUNT}:identitystore/d-9067642ac7",
        },
        "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE",
    }
    p = _principal(ui)
    assert (p.type, p.key, p.name, p.is_service) == (
        "IdentityCenterUser",
        f"identity-center:arn:aws:identitystore::{ACCOUNT}:identitystore/d-9067642ac7:"
        "544894e8-80c1-707f-60e3-3ba6510dfac1",
        "544894e8-80c1-707f-60e3-3ba6510dfac1",
        False,
    )


def test_unknown_with_an_assumed_role_arn_is_keyed_by_the_role() -> None:
    ui = {
        "type": "Unknown",
        "principalId": "AROAEXAMPLE:AdanAlvarez",
        "arn": "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_1b74/AdanAlvarez",
        "accountId": "111111111111",
    }
    p = _principal(ui)
    assert (p.type, p.key, p.session) == (
        "Unknown",
        "arn:aws:iam::111111111111:role/AWSReservedSSO_Admin_1b74",
        "AdanAlvarez",
    )


def test_unknown_without_arn_is_kept_distinct() -> None:
    ui = {
        "type": "Unknown",
        "principalId": "9067642ac7-user",
        "accountId": ACCOUNT,
        "userName": "v",
    }
    p = _principal(ui)
    assert p.key == f"unknown:{ACCOUNT}:9067642ac7-user"
    assert not p.is_service


def test_no_type_is_aws_acting_on_its_own() -> None:
    p = _principal({"accountId": ACCOUNT, "invokedBy": "cloudtrail.amazonaws.com"})
    assert (p.type, p.key, p.is_service) == ("AWSService", "service:cloudtrail.amazonaws.com", True)


@pytest.mark.parametrize("identity", [None, _ABSENT, "AWS", 42, ["x"]], ids=repr)
def test_null_absent_or_malformed_user_identity_is_the_event_source(identity: Any) -> None:
    p = _principal(identity, action="kms.amazonaws.com:RotateKey")
    assert (p.key, p.is_service) == ("service:kms.amazonaws.com", True)


def test_unknown_future_type_is_kept_distinct_never_guessed() -> None:
    ui = {
        "type": "QuantumUser",
        "principalId": "QUID123",
        "arn": f"arn:aws:quantum::{ACCOUNT}:user/q",
        "accountId": ACCOUNT,
    }
    p = _principal(ui)
    assert p.type == "QuantumUser"
    assert p.key == f"quantumuser:{ACCOUNT}:arn:aws:quantum::{ACCOUNT}:user/q"
    assert not p.is_service


def test_service_linked_role_is_a_service_principal() -> None:
    ui = assumed_role("AWSServiceRoleForSSM", "ssm-session")
    ui["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForSSM"
    )
    p = _principal(ui)
    assert p.is_service
    assert p.key.endswith("/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForSSM")


def test_govcloud_partition_is_kept() -> None:
    ui = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:alice",
        "arn": f"arn:aws-us-gov:sts::{ACCOUNT}:assumed-role/Admin/alice",
        "accountId": ACCOUNT,
    }
    assert _principal(ui).key == f"arn:aws-us-gov:iam::{ACCOUNT}:role/Admin"
    ui = user("alice")
    ui["arn"] = f"arn:aws-us-gov:iam::{ACCOUNT}:user/alice"
    assert _principal(ui).key == f"arn:aws-us-gov:iam::{ACCOUNT}:user/alice"
    china = assumed_role()
    china["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws-cn:iam::{ACCOUNT}:role/deploy"
    assert _principal(china).key == f"arn:aws-cn:iam::{ACCOUNT}:role/deploy"


@pytest.mark.parametrize(
    "field",
    ["type", "arn", "accountId", "principalId", "userName", "sessionContext", "invokedBy"],
)
@pytest.mark.parametrize("junk", [None, 7, 1.5, True, [], {"a": {}}, "", "x" * 10_000])
def test_wrong_types_in_user_identity_never_raise(field: str, junk: Any) -> None:
    for ui in (assumed_role(), user(), {"type": "AWSService", "invokedBy": "x.amazonaws.com"}):
        ui[field] = junk
        p = _principal(ui)
        assert isinstance(p.key, str)
        assert p.key


# -- event time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-06-01T00:00:00Z", T_2024),
        ("2024-06-01T12:34:56Z", T_2024 + 12 * 3600 + 34 * 60 + 56),
        ("2024-06-01 00:00:00", T_2024),  # hand-edited (panther)
        ("2024-06-01 00:00:00Z", T_2024),
        ("2024-06-01 00:00:01.000000000", T_2024 + 1),  # nanoseconds
        ("2024-06-01T00:00:01.5Z", T_2024 + 1),
        ("2024-06-01T00:00:00.000", T_2024),
        ("2024-06-01T02:00:00+02:00", T_2024),
        ("2024-05-31T22:30:00-0130", T_2024),
        ("2024-06-01T00:00:00", T_2024),
        ("1969-12-31T23:59:59.5-01:00", 3599),  # the fraction never rounds the second up
        ("1970-01-01T00:00:00Z", 0),
        ("8999-12-31T23:59:59Z", 221_845_392_000 - 1),
        ("2016-12-31T23:59:60Z", 1_483_228_800),  # a leap second, as CloudTrail may write it
    ],
)
def test_event_time_variants(value: str, expected: int) -> None:
    assert parse_event_time(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "redacted",
        "...",
        "",
        None,
        1717200000,
        1.7e9,
        ["2024-06-01T00:00:00Z"],
        "2024-02-30T00:00:00Z",
        "2024-06-01T24:00:00Z",
        "2024-06-01T00:60:00Z",
        "2024-13-01 00:00:00",
        "2024-06-01",
        "June 1, 2024 12:00:00 AM",
        "2024-06-01T00:00:00.Z",
        # Beyond what an alert can show once the forget period is added, or before 1970.
        "9999-12-31T23:59:59-12:00",
        "9000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        # Digits that str.isdigit() admits but CloudTrail never writes ('²' used to crash int()).
        "2024-06-01T0\u00b2:00:00Z",
        "2024-06-01T00:0\u0663:00Z",
        "2024-06-01T00:00:\uff10\uff10Z",
        "2024-06-01T00:00:60 ",
    ],
)
def test_unusable_event_times(value: Any) -> None:
    assert parse_event_time(value) is None


def test_record_without_usable_event_time_is_skipped() -> None:
    for value in ("redacted", None, 17):
        with pytest.raises(RecordSkipped) as info:
            normalize(record(eventTime=value))
        assert info.value.reason == "no_event_time"
    doc = record()
    del doc["eventTime"]
    with pytest.raises(RecordSkipped):
        normalize(doc)


def test_at_timestamp_is_used_when_event_time_is_absent() -> None:
    doc = record()
    del doc["eventTime"]
    doc["@timestamp"] = "2024-06-01T00:00:05.000Z"
    assert normalize(doc).event_time == T_2024 + 5


def test_at_timestamp_does_not_override_event_time() -> None:
    doc = record(t=T_2024, **{"@timestamp": "2030-01-01T00:00:00.000Z"})
    assert normalize(doc).event_time == T_2024


# -- actions, accounts, fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ListFunctions20150331", "ListFunctions"),
        ("UpdateFunctionCode20150331v2", "UpdateFunctionCode"),
        ("AddPermission20150331v2", "AddPermission"),
        ("CreateFunction2020_05_31", "CreateFunction"),
        ("GetDistributionConfig2019_03_26", "GetDistributionConfig"),
        ("DescribeInstances", "DescribeInstances"),
        ("CreateV2LoggingLevel", "CreateV2LoggingLevel"),
        ("20150331", "20150331"),  # nothing left: keep the name rather than an empty action
    ],
)
def test_api_version_suffix_is_stripped(name: str, expected: str) -> None:
    assert normalize_action("lambda.amazonaws.com", name) == f"lambda.amazonaws.com:{expected}"


def test_normalized_event_fields() -> None:
    doc = record(
        "lambda.amazonaws.com:UpdateFunctionCode20150331v2",
        T_2024,
        event_id="evt-1",
        region="eu-west-1",
        errorCode="AccessDenied",
        readOnly="false",
        userAgent="u" * 2000,
    )
    e = normalize(doc)
    assert e.action == "lambda.amazonaws.com:UpdateFunctionCode"
    assert (e.event_source, e.event_name) == (
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
    )
    assert (e.account_id, e.region, e.event_time, e.event_id) == (
        ACCOUNT,
        "eu-west-1",
        T_2024,
        "evt-1",
    )
    assert (e.error_code, e.source_ip, e.event_type, e.event_category) == (
        "AccessDenied",
        "198.51.100.7",
        "AwsApiCall",
        "Management",
    )
    assert e.read_only is False
    assert len(e.user_agent) == 512
    assert e.tuple_key == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice", e.action)


@pytest.mark.parametrize(
    ("raw", "expected"), [(True, True), ("true", True), ("yes", None), (1, None)]
)
def test_read_only(raw: Any, expected: bool | None) -> None:
    assert normalize(record(readOnly=raw)).read_only is expected


def test_insight_record_is_skipped() -> None:
    doc = {
        "eventVersion": "1.07",
        "eventTime": "2019-11-14T00:51:00Z",
        "awsRegion": "us-east-1",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": ACCOUNT,
        "insightDetails": {"state": "Start", "eventSource": "ssm.amazonaws.com"},
        "eventCategory": "Insight",
    }
    with pytest.raises(RecordSkipped) as info:
        normalize(doc)
    assert info.value.reason == "insight_event"


@pytest.mark.parametrize("missing", ["eventSource", "eventName"])
def test_missing_event_source_or_name_is_skipped(missing: str) -> None:
    doc = record()
    del doc[missing]
    with pytest.raises(RecordSkipped) as info:
        normalize(doc)
    assert info.value.reason == "no_action"
    with pytest.raises(RecordSkipped):
        normalize(record(**{missing: 12}))


def test_account_falls_back_from_recipient_to_identity_to_the_key() -> None:
    assert normalize(record(recipientAccountId="<account>")).account_id == ACCOUNT  # identity's
    doc = record(recipientAccountId="0123456789", identity={"type": "Root"})
    with pytest.raises(RecordSkipped) as info:
        normalize(doc)
    assert info.value.reason == "no_valid_account"
    assert normalize(doc, fallback_account="999988887777").account_id == "999988887777"


def test_region_falls_back_to_the_key_then_unknown() -> None:
    doc = record()
    del doc["awsRegion"]
    assert normalize(doc, fallback_region="ap-south-1").region == "ap-south-1"
    assert normalize(doc).region == "unknown"


@pytest.mark.parametrize("raw", [None, 3, "Records", [record()]], ids=repr)
def test_non_object_records_are_skipped(raw: Any) -> None:
    with pytest.raises(RecordSkipped) as info:
        normalize(raw)
    assert info.value.reason == "not_an_object"


# -- real files ----------------------------------------------------------------------------------


def _outcomes(name: str) -> tuple[list[Any], Counter[str]]:
    events, skips = [], Counter[str]()
    for raw in fixture_records(name):
        try:
            events.append(normalize(raw))
        except RecordSkipped as skip:
            skips[skip.reason] += 1
    return events, skips


def test_fixture_federated_user_and_its_issuer() -> None:
    events, skips = _outcomes(STRATUS_FEDERATION)
    assert not skips
    by_type = {e.principal.type: e for e in events}
    assert by_type["FederatedUser"].principal.key == (
        "arn:aws:sts::742491224508:federated-user/stratus_red_team"
    )
    assert by_type["IAMUser"].action == "sts.amazonaws.com:GetFederationToken"


def test_fixture_otrf_records_use_at_timestamp() -> None:
    events, skips = _outcomes(OTRF)
    assert len(events) == 103
    assert not skips
    assert min(e.event_time for e in events) >= 1_600_000_000  # 2020-09
    types = Counter(e.principal.type for e in events)
    assert types == {"IAMUser": 87, "AWSService": 5, "AssumedRole": 11}
    role_keys = {e.principal.key for e in events if e.principal.type == "AssumedRole"}
    assert role_keys == {
        "arn:aws:iam::123456789123:role/MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0"
    }


def test_fixture_insight_records_are_skipped() -> None:
    events, skips = _outcomes(INSIGHT)
    assert events == []
    assert skips == {"insight_event": 2}


def test_fixture_event_version_1_0() -> None:
    (event,), _ = _outcomes(EVENT_VERSION_1_0)
    assert event.principal.key == "arn:aws:iam::123456789012:user/Alice"
    assert event.action == "ec2.amazonaws.com:StartInstances"


def test_fixture_service_event_without_type() -> None:
    (event,), _ = _outcomes(SERVICE_EVENT)
    assert event.principal.is_service
    assert event.principal.type == "AWSService"
    assert event.event_type == "AwsServiceEvent"


def test_fixture_trailscraper_delivery_file() -> None:
    events, _ = _outcomes(TRAILSCRAPER)
    assert [(e.principal.key, e.principal.is_service) for e in events] == [
        ("arn:aws:iam::111111111111:role/someRole", False),
        ("service:config.amazonaws.com", True),
    ]


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        (
            "panther-rule-tests/aws_cloudtrail_account_discovery.json.gz",
            {  # one with a sessionIssuer, two rebuilt from the assumed-role ARN
                "arn:aws:iam::123456789123:role/TestUser",
                "arn:aws:iam::123456789123:role/DevAdministrator",
            },
        ),
        (
            "panther-rule-tests/aws_vpce_external_principal.json.gz",
            {"aws-account:111111111111:AROAEXAMPLE", "aws-account:222222222222:AROAEXAMPLE"},
        ),
        (
            "traildiscover/Marketplace-AcceptAgreementRequest.json.gz",
            {"arn:aws:iam::111111111111:role/AWSReservedSSO_AdministratorAccess_1b74cd717d47002b"},
        ),
        ("traildiscover/SES-SendEmail.json.gz", {"service:ses.amazonaws.com"}),
        (
            "aws-docs-examples/cloudtrail-event-reference-aws-console-sign-in-events__05.json.gz",
            {"arn:aws:iam::111122223333:root"},
        ),
        (
            "panther-rule-tests/aws_ec2_stopinstances.json.gz",  # console sessions, issuer {}
            {"arn:aws:iam::777788889999:user/Nikki", "arn:aws:iam::123456789012:user/Mateo"},
        ),
    ],
)
def test_fixture_principal_keys(name: str, keys: set[str]) -> None:
    events, _ = _outcomes(name)
    assert {e.principal.key for e in events} == keys


def test_fixture_service_linked_roles_are_services() -> None:
    events, _ = _outcomes("panther-rule-tests/aws_ec2_monitoring.json.gz")
    flagged = {e.principal.key: e.principal.is_service for e in events}
    assert flagged == {
        "arn:aws:iam::123456789101:role/DevAdministrator": False,
        "arn:aws:iam::123123123123:role/DevAdministrator": False,
        "arn:aws:iam::123123123123:role/aws-service-role/eks-nodegroup.amazonaws.com/"
        "AWSServiceRoleForAmazonEKSNodegroup": True,
    }


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("panther-rule-tests/aws_root_activity.json.gz", {"no_event_time": 1}),  # "redacted"
        ("panther-rule-tests/signin_with_aws_cli_prompt.json.gz", {"no_event_time": 1}),  # "..."
        ("panther-rule-tests/retrieve_sso_access_token.json.gz", {"no_event_time": 1}),
        ("panther-rule-tests/aws_s3_bucket_deleted.json.gz", {"no_event_time": 2}),
        ("panther-rule-tests/aws_saml_activity.json.gz", {"no_valid_account": 4}),  # 10 digits
        ("panther-rule-tests/aws_console_signin.json.gz", {"no_valid_account": 1}),
        ("panther-rule-tests/new_aws_account_logging.json.gz", {"no_action": 1}),
    ],
)
def test_fixture_skip_reasons(name: str, reasons: dict[str, int]) -> None:
    _, skips = _outcomes(name)
    assert skips == reasons


def test_fixture_space_separated_and_nanosecond_times() -> None:
    events, _ = _outcomes("panther-rule-tests/aws_waf_disassociation.json.gz")
    assert {e.event_time for e in events} == {1_664_492_675}  # "2022-09-29 23:04:35"
    events, _ = _outcomes("panther-rule-tests/aws_bedrock_guardrail_update_delete.json.gz")
    assert min(e.event_time for e in events) == 1_737_481_150  # "2025-01-21 17:39:10.000000000"


@pytest.mark.parametrize(
    ("name", "action"),
    [
        (
            "traildiscover/Lambda-UpdateFunctionCode20150331v2.json.gz",
            "lambda.amazonaws.com:UpdateFunctionCode",
        ),
        (
            "traildiscover/CloudFront-CreateFunction2020_05_31.json.gz",
            "cloudfront.amazonaws.com:CreateFunction",
        ),
    ],
)
def test_fixture_api_version_suffixes(name: str, action: str) -> None:
    (event,), _ = _outcomes(name)
    assert event.action == action


# An account id with a Unicode digit (ARABIC-INDIC DIGIT THREE) or a trailing newline: `\d` and
# `$` would take either.
NOT_ACCOUNTS = ["12345678901\u0663", "123456789012\n"]


@pytest.mark.parametrize("account", NOT_ACCOUNTS, ids=repr)
def test_account_ids_are_ascii_digits_and_nothing_after(account: str) -> None:
    assert not is_account_id(account)
    assert account_of_identity({"accountId": account}) == ""
    # Not the record's account: the identity's is taken instead, and with neither it is skipped.
    doc = record(recipientAccountId=account)
    assert normalize(doc).account_id == ACCOUNT
    doc["userIdentity"]["accountId"] = account
    with pytest.raises(RecordSkipped) as info:
        normalize(doc)
    assert info.value.reason == "no_valid_account"


@pytest.mark.parametrize("account", NOT_ACCOUNTS, ids=repr)
def test_an_assumed_role_arn_with_such_an_account_is_not_rebuilt(account: str) -> None:
    arn = f"arn:aws:sts::{account}:assumed-role/Admin/alice"
    p = _principal({"type": "AssumedRole", "arn": arn, "principalId": "AROAEXAMPLE:alice"})
    assert p.key == "assumed-role:-:AROAEXAMPLE"


@pytest.mark.parametrize(
    "value",
    [
        "2024-06-01T00:00:00Z\n",
        "2024-06-01 00:00:00\n",
        "2024-06-01T00:00:00+02:00\n",
        "\u0662024-06-01 00:00:00",
        "2024-06-01 00:00:00+0\u0662:00",
        "2024-06-01 00:00:00.\u0665",
    ],
    ids=repr,
)
def test_event_times_are_ascii_digits_and_nothing_after(value: str) -> None:
    assert parse_event_time(value) is None


@pytest.mark.parametrize("name", ["ListFunctions2015033\u0661", "ListFunctions20150331\n"])
def test_only_an_ascii_api_version_suffix_is_stripped(name: str) -> None:
    assert normalize_action("lambda.amazonaws.com", name) == f"lambda.amazonaws.com:{name}"

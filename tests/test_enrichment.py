"""The AWS enrichment adapters against moto (Organizations, IAM, STS), the trust-policy parser
with literal documents, and the CLI wiring."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cloudtrail_anomaly.app.cli.main import main
from cloudtrail_anomaly.app.settings import EnrichmentSettings
from cloudtrail_anomaly.aws.enrichment import (
    AwsEnricher,
    IamRoles,
    OrganizationsAccounts,
    trust_principals,
)
from cloudtrail_anomaly.ports import Enricher

from tests.builders import T0, record, user
from tests.helpers import gz

REGION = "us-east-1"
READER = "CloudTrailAnomalyReadOnly"
MEMBER = "111122223333"  # the account whose roles we read (moto's default is 123456789012)


class Clock:
    """Wall-clock time that a test moves (moto's credentials expire in real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aws(aws: None) -> Iterator[boto3.Session]:
    """The conftest's moto environment, handed to the tests as a boto3 session."""
    yield boto3.Session(region_name=REGION)


def trust(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


def member_iam(session: boto3.Session) -> Any:
    """An IAM client acting in MEMBER (moto maps assumed credentials to the role's account)."""
    creds = session.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/setup", RoleSessionName="setup"
    )["Credentials"]
    return session.client(
        "iam",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


class CountingFactory:
    """The IAM client factory, counting the calls that reach IAM."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.clients = 0
        self.get_role_calls = 0
        self.access_keys: list[str] = []

    def __call__(self, credentials: Mapping[str, Any]) -> Any:
        self.clients += 1
        self.access_keys.append(credentials["AccessKeyId"])
        client = self.session.client(
            "iam",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        client.meta.events.register("before-call.iam.GetRole", self._count)
        return client

    def _count(self, **_: Any) -> None:
        self.get_role_calls += 1


# -- trust policies -----------------------------------------------------------------------------


def test_trust_principals_kinds_strings_and_lists() -> None:
    doc = {
        "Statement": [
            allow({"Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]}),
            allow({"Service": "lambda.amazonaws.com"}),  # duplicates collapse
            allow(
                {
                    "Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
                },
                Action="sts:AssumeRoleWithWebIdentity",
                Condition={"StringLike": {"token.actions.githubusercontent.com:sub": "repo:o/r:*"}},
            ),
            allow({"Federated": ["arn:aws:iam::111122223333:saml-provider/Okta"]}),
            allow({"AWS": "arn:aws:iam::444455556666:root"}),
            allow({"AWS": ["777788889999", "arn:aws:iam::222233334444:role/deployer"]}),
            allow({"AWS": "arn:aws:sts::555566667777:assumed-role/x/y"}),
            allow({"AWS": "AROAEXAMPLEDELETEDROLE"}),  # a deleted principal: no account known
            allow({"CanonicalUser": "79a59df900b949e55d96a1e698fbaced"}),
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}},
        ]
    }

    services, federated, accounts = trust_principals(doc)

    assert services == ("lambda.amazonaws.com", "edgelambda.amazonaws.com")
    assert federated == (
        "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
        "arn:aws:iam::111122223333:saml-provider/Okta",
    )
    assert accounts == ("444455556666", "777788889999", "222233334444", "555566667777")


def test_trust_principals_single_statement_wildcard_and_encoded_documents() -> None:
    assert trust_principals({"Statement": allow("*")}) == ((), (), ("*",))
    assert trust_principals({"Statement": allow({"AWS": "*"})}) == ((), (), ("*",))
    encoded = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ec2.amazonaws.com%22%7D%7D%5D%7D"
    assert trust_principals(encoded) == (("ec2.amazonaws.com",), (), ())
    for junk in (None, "", "not json", {"Statement": "x"}, {"Statement": [3, {"Effect": "Allow"}]}):
        assert trust_principals(junk) == ((), (), ())


# -- Organizations ------------------------------------------------------------------------------


class CountingOrg:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.listings = 0

    def get_paginator(self, name: str) -> Any:
        self.listings += 1
        return self.client.get_paginator(name)


def test_account_names_from_every_page_cached_for_the_ttl(aws: boto3.Session) -> None:
    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    created = {}
    for i in range(25):  # more than one page of 20
        status = org.create_account(AccountName=f"team-{i:02}", Email=f"t{i}@example.com")
        created[status["CreateAccountStatus"]["AccountId"]] = f"team-{i:02}"
    counting, clock = CountingOrg(org), Clock()
    accounts = OrganizationsAccounts(counting, ttl_s=600, clock=clock)

    assert {a: accounts.account_name(a) for a in created} == created
    assert accounts.account_name("000000000000") is None
    owners = {a: accounts.account_owner(a) for a in created}
    assert owners == {a: f"t{int(name[5:])}@example.com" for a, name in created.items()}
    assert accounts.account_owner("000000000000") is None
    assert counting.listings == 1  # names and owners come from the same listing

    renamed = next(iter(created))
    clock.now += 601
    org.close_account(AccountId=renamed)
    accounts.account_name(renamed)
    assert counting.listings == 2


def test_organizations_failure_gives_none_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    org = boto3.client(
        "organizations", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    clock = Clock()
    accounts = OrganizationsAccounts(org, ttl_s=60, clock=clock)
    caplog.set_level(logging.WARNING)

    with Stubber(org) as stub:
        for _ in range(2):
            stub.add_client_error("list_accounts", "AccessDeniedException", "not authorized")
        assert accounts.account_name("123456789012") is None
        assert accounts.account_name("123456789012") is None  # cached failure: no new call
        assert accounts.account_owner("123456789012") is None  # the same failed listing
        clock.now += 61
        assert accounts.account_name("123456789012") is None
        stub.assert_no_pending_responses()

    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "enrichment: cannot list Organizations accounts (AccessDeniedException); alerts go out "
        "without account names"
    ]


# -- IAM roles ----------------------------------------------------------------------------------


@pytest.fixture
def member_roles(aws: boto3.Session) -> dict[str, str]:
    iam = member_iam(aws)
    docs = {
        "lambda-exec": trust(allow({"Service": "lambda.amazonaws.com"})),
        "okta-admin": trust(
            allow(
                {"Federated": f"arn:aws:iam::{MEMBER}:saml-provider/Okta"},
                Action="sts:AssumeRoleWithSAML",
                Condition={"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            )
        ),
        "partner": trust(allow({"AWS": ["arn:aws:iam::444455556666:root", "777788889999"]})),
        READER: trust(allow({"AWS": "arn:aws:iam::123456789012:root"})),
    }
    arns = {}
    for name, doc in docs.items():
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc, Path="/app/")
        arns[name] = role["Role"]["Arn"]
    return arns


def test_role_info_through_the_reader_role_in_the_roles_account(
    aws: boto3.Session, member_roles: dict[str, str]
) -> None:
    factory = CountingFactory(aws)
    roles = IamRoles(aws.client("sts"), factory, READER, Clock())

    lam = roles.role_info(member_roles["lambda-exec"])
    okta = roles.role_info(member_roles["okta-admin"])
    partner = roles.role_info(member_roles["partner"])

    assert lam is not None and okta is not None and partner is not None
    assert member_roles["lambda-exec"] == f"arn:aws:iam::{MEMBER}:role/app/lambda-exec"
    assert lam.arn == member_roles["lambda-exec"]
    assert lam.trusted_services == ("lambda.amazonaws.com",)
    assert isinstance(lam.created, int) and lam.created > T0
    assert okta.trusted_federated == (f"arn:aws:iam::{MEMBER}:saml-provider/Okta",)
    assert okta.trusted_services == okta.trusted_accounts == ()
    assert partner.trusted_accounts == ("444455556666", "777788889999")
    assert factory.clients == 1  # one AssumeRole for the account, reused for every role


def test_role_info_is_cached_per_role_for_the_ttl(
    aws: boto3.Session, member_roles: dict[str, str]
) -> None:
    factory, clock = CountingFactory(aws), Clock()
    roles = IamRoles(aws.client("sts"), factory, READER, clock, ttl_s=600)

    for _ in range(3):
        roles.role_info(member_roles["lambda-exec"])
    assert factory.get_role_calls == 1

    member_iam(aws).update_assume_role_policy(
        RoleName="lambda-exec", PolicyDocument=trust(allow({"Service": "ec2.amazonaws.com"}))
    )
    clock.now += 601
    info = roles.role_info(member_roles["lambda-exec"])
    assert info is not None and info.trusted_services == ("ec2.amazonaws.com",)
    assert factory.get_role_calls == 2


def test_unknown_role_gives_none_cached_and_logged_once_without_secrets(
    aws: boto3.Session, member_roles: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    factory, clock = CountingFactory(aws), Clock()
    roles = IamRoles(aws.client("sts"), factory, READER, clock, ttl_s=60)
    caplog.set_level(logging.WARNING)
    missing = f"arn:aws:iam::{MEMBER}:role/deleted-since"

    assert roles.role_info(missing) is None
    assert roles.role_info(missing) is None
    assert factory.get_role_calls == 1
    clock.now += 61
    assert roles.role_info(missing) is None
    assert factory.get_role_calls == 2

    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"enrichment: cannot read IAM roles in account {MEMBER} (GetRole: NoSuchEntity)"
    ]
    assert not any(key in caplog.text for key in factory.access_keys)
    assert "testing" not in caplog.text


class FailingSts:
    def __init__(self) -> None:
        self.calls = 0

    def assume_role(self, **_: Any) -> Any:
        self.calls += 1
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole"
        )


def test_reader_role_not_assumable_gives_none_without_retrying_each_alert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sts, clock = FailingSts(), Clock()
    roles = IamRoles(sts, lambda creds: pytest.fail("no credentials"), READER, clock, ttl_s=60)
    caplog.set_level(logging.WARNING)

    assert roles.role_info(f"arn:aws:iam::{MEMBER}:role/a") is None
    assert roles.role_info(f"arn:aws:iam::{MEMBER}:role/b") is None
    assert sts.calls == 1
    clock.now += 61
    assert roles.role_info(f"arn:aws:iam::{MEMBER}:role/c") is None
    assert sts.calls == 2

    assert [r.getMessage() for r in caplog.records] == [
        f"enrichment: cannot assume arn:aws:iam::{MEMBER}:role/{READER} (AccessDenied); "
        f"roles of account {MEMBER} go unenriched"
    ]


def test_non_role_arns_are_not_looked_up() -> None:
    sts = FailingSts()
    roles = IamRoles(sts, lambda creds: pytest.fail("no credentials"), READER, Clock())

    for arn in ("arn:aws:iam::123456789012:user/alice", "service:ec2.amazonaws.com", "role/x"):
        assert roles.role_info(arn) is None
    assert sts.calls == 0


# -- the composed enricher ----------------------------------------------------------------------


def test_aws_enricher_follows_the_settings(
    aws: boto3.Session, member_roles: dict[str, str]
) -> None:
    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(AccountName="payments-prod", Email="p@example.com")
    account_id = member["CreateAccountStatus"]["AccountId"]

    both: Enricher = AwsEnricher.from_session(
        aws, EnrichmentSettings(organizations=True, iam_roles=True, iam_role_name=READER)
    )
    assert both.account_name(account_id) == "payments-prod"
    assert both.account_owner(account_id) == "p@example.com"
    info = both.role_info(member_roles["lambda-exec"])
    assert info is not None and info.trusted_services == ("lambda.amazonaws.com",)

    names_only = AwsEnricher.from_session(aws, EnrichmentSettings(organizations=True))
    assert names_only.roles is None
    assert names_only.role_info(member_roles["lambda-exec"]) is None

    neither = AwsEnricher.from_session(aws, EnrichmentSettings())
    assert (neither.accounts, neither.roles) == (None, None)
    assert neither.account_name(account_id) is None
    assert neither.account_owner(account_id) is None


def test_cli_replay_enriches_when_the_config_says_so(
    aws: boto3.Session, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    account_id = org.describe_organization()["Organization"]["MasterAccountId"]
    log = tmp_path / "trail.json.gz"
    log.write_bytes(
        gz({"Records": [record(t=T0, identity=user(account=account_id), account=account_id)]})
    )
    plain = tmp_path / "plain.toml"
    plain.write_text("[policy]\nlearning_days = 0.0\n")
    enriched = tmp_path / "enriched.toml"
    enriched.write_text("[policy]\nlearning_days = 0.0\n[enrichment]\norganizations = true\n")

    assert main(["replay", str(log), "--config", str(plain)]) == 0
    (alert,) = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert (alert["account_name"], alert["account_owner"]) == (None, None)

    assert main(["replay", str(log), "--config", str(enriched)]) == 0
    (alert,) = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert alert["account_name"] == "master"
    owner = org.describe_account(AccountId=account_id)["Account"]["Email"]
    assert owner and alert["account_owner"] == owner


def test_assumed_credentials_are_renewed_before_they_expire(
    aws: boto3.Session, member_roles: dict[str, str]
) -> None:
    factory, clock = CountingFactory(aws), Clock()
    roles = IamRoles(aws.client("sts"), factory, READER, clock, ttl_s=60)

    roles.role_info(member_roles["lambda-exec"])
    clock.now += 61  # the role answer expired, the one-hour credentials did not
    roles.role_info(member_roles["lambda-exec"])
    assert (factory.clients, factory.get_role_calls) == (1, 2)

    clock.now += 3600 - 300  # within five minutes of the credentials' expiration
    roles.role_info(member_roles["lambda-exec"])
    assert (factory.clients, factory.get_role_calls) == (2, 3)

"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

from tests.deployed import Packaged, packaged_stack
from tests.dynamo_tables import BASELINE_TABLE, LEDGER_TABLE, create_table
from tests.trail import BUCKET, ORG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# The deployment the harness runs: an organization trail's bucket (tests/trail.py's), Splunk
# HEC with its token in Secrets Manager, alarms by e-mail; every other parameter its default.
HARNESS_PARAMS = {
    "trailBucket": BUCKET,
    "orgId": ORG,
    "splunkUrl": "https://splunk.example.com:8088",
    "splunkSecret": "cloudtrail-anomaly/hec",
    "alarmEmail": "secops@example.com",
}


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """scripts/build_layers.py's zips and the template osls packages from them (once a run)."""
    return packaged_stack(Path(tmp_path_factory.mktemp("packaged")), HARNESS_PARAMS)


# What every moto test runs under: fake credentials (never a real account's) and a region.
AWS_REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every AWS call of the test goes to moto, with fake credentials, in us-east-1."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": AWS_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> DynamoDBClient:
    """A DynamoDB client on moto, with the stores' tables (tests/dynamo_tables.py): `baseline`
    (the baseline and the outbox) and `ledger`."""
    client = boto3.client("dynamodb", region_name=AWS_REGION)
    create_table(client, BASELINE_TABLE)
    create_table(client, LEDGER_TABLE)
    return client

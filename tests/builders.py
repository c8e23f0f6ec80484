"""The CloudTrail record builder and the identity builders of the tests.

`record` is the one builder of a CloudTrail record; `user`, `assumed_role`, `root`,
`aws_service`, `service_linked_role` and `sso` build its `userIdentity`; `ACCOUNT` and `T0` are
its defaults. `user_record` is `record` in the shape of the trail on disk (tests/trail.py, the
reconciliation and fault suites).
"""

from __future__ import annotations

import copy
from typing import Any

from cloudtrail_anomaly.domain.model import iso

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
T0 = 1_717_200_000  # 2024-06-01T00:00:00Z
DAY = 86_400
SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"


def user(name: str = "alice", account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE" + name.upper(),
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLE",
        "userName": name,
    }


def assumed_role(
    role: str = "deploy", session: str = "ci", account: str = ACCOUNT
) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2024-06-01T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def root(account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "Root",
        "principalId": account,
        "arn": f"arn:aws:iam::{account}:root",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLEROOT",
    }


def aws_service(name: str = "ec2.amazonaws.com") -> dict[str, Any]:
    return {"type": "AWSService", "invokedBy": name}


def service_linked_role(account: str = ACCOUNT) -> dict[str, Any]:
    ident = assumed_role("AWSServiceRoleForElasticLoadBalancing", "ElasticLoadBalancing", account)
    issuer = ident["sessionContext"]["sessionIssuer"]
    issuer["arn"] = (
        f"arn:aws:iam::{account}:role/aws-service-role/elasticloadbalancing.amazonaws.com/"
        "AWSServiceRoleForElasticLoadBalancing"
    )
    return ident


def sso(person: str, role: str = SSO_ROLE, account: str = ACCOUNT) -> dict[str, Any]:
    ident = assumed_role(role, person, account)
    ident["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role}"
    )
    return ident


def record(
    action: str = "ec2.amazonaws.com:DescribeInstances",
    t: int = T0,
    identity: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
    account: str = ACCOUNT,
    region: str = "us-east-1",
    **extra: Any,
) -> dict[str, Any]:
    """A well-formed CloudTrail record; `extra` overrides or adds top-level fields."""
    source, _, name = action.rpartition(":")
    doc: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": copy.deepcopy(identity) if identity is not None else user(),
        "eventTime": iso(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "req-" + (event_id or f"{action}-{t}"),
        "eventID": event_id or f"evt-{action}-{t}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    doc.update(extra)
    return doc


def user_record(action: str, t: int, name: str = "alice", account: str = ACCOUNT) -> dict[str, Any]:
    """`record` of IAM user `name` as the trail on disk (tests/trail.py) holds it: its IDs
    named after the event name and the time (`evt-GetUser-<t>`, `req-GetUser-<t>`: the fault
    suite's expectations and docs/reliability.md name them), read-only when the event name
    starts with Get, List or Describe."""
    event_name = action.rpartition(":")[2]
    return record(
        action,
        t,
        user(name, account),
        event_id=f"evt-{event_name}-{t}",
        account=account,
        requestID=f"req-{event_name}-{t}",
        readOnly=event_name.startswith(("Get", "List", "Describe")),
    )

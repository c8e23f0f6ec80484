"""Is an AWS API call allowed by a role's policy? Enough of IAM's evaluation for the calls the
functions make, to check each one a test records against the role the stack deploys.

Every recorded call maps to the IAM actions and resources AWS authorizes it as (a
TransactWriteItems is authorized per item as PutItem, UpdateItem, DeleteItem or
ConditionCheckItem; a BatchWriteItem as BatchWriteItem on each table; S3's HeadObject as
GetObject; a ListObjectsV2 as ListBucket with the `s3:prefix` condition key). A call that has no
mapping here fails the check: adding it is how a new API call gets reviewed.

Policy evaluation: an explicit Deny wins; else some Allow statement must match the action and the
resource (IAM wildcards `*` and `?`) and its conditions (StringLike, StringEquals and their
IfExists forms, on the keys the mapping provides; an unknown condition key fails closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Call:
    """One API call as a client made it."""

    function: str  # which function's code made it ("realtime", "reconcile")
    service: str  # botocore's service name: s3, dynamodb, sqs, ...
    operation: str  # the API's operation name: GetObject, TransactWriteItems, ...
    params: Mapping[str, Any]
    region: str
    account: str


@dataclass(frozen=True)
class Need:
    """One authorization AWS makes for a call."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


class Unmapped(Exception):
    """A call with no mapping to IAM actions: add one to `needs`."""


def _table(call: Call, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:dynamodb:{call.region}:{call.account}:table/{name}"


def _queue(call: Call, url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    return f"arn:aws:sqs:{call.region}:{call.account}:{name}"


_TRANSACT_ITEM = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def needs(call: Call, resolve_secret: Any = None) -> list[Need]:
    """The authorizations `call` needs. `resolve_secret(name_or_arn) -> arn` for Secrets Manager."""
    p, op, svc = call.params, call.operation, call.service
    if svc == "s3":
        bucket = p.get("Bucket", "")
        if op in ("GetObject", "HeadObject"):
            found = [Need("s3:GetObject", f"arn:aws:s3:::{bucket}/{p['Key']}")]
            if p.get("_error") in ("NoSuchKey", "404"):
                # S3 answers 404 for a missing key only to a caller allowed s3:ListBucket (a
                # check without s3:prefix); else 403 AccessDenied.
                found.append(Need("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
            return found
        if op == "PutObject":
            return [Need("s3:PutObject", f"arn:aws:s3:::{bucket}/{p['Key']}")]
        if op in ("ListObjectsV2", "ListObjects"):
            return [
                Need("s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": p.get("Prefix", "")})
            ]
        if op == "GetBucketLocation":
            return [Need("s3:GetBucketLocation", f"arn:aws:s3:::{bucket}")]
    if svc == "dynamodb":
        if op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "DescribeTable"):
            return [Need(f"dynamodb:{op}", _table(call, p["TableName"]))]
        if op in ("BatchGetItem", "BatchWriteItem"):
            return [Need(f"dynamodb:{op}", _table(call, t)) for t in p["RequestItems"]]
        if op in ("TransactWriteItems", "TransactGetItems"):
            found = []
            for item in p["TransactItems"]:
                ((kind, body),) = item.items()
                action = "GetItem" if kind == "Get" else _TRANSACT_ITEM[kind]
                found.append(Need(f"dynamodb:{action}", _table(call, body["TableName"])))
            return found
    if svc == "sqs" and op in (
        "ReceiveMessage",
        "DeleteMessage",
        "GetQueueAttributes",
        "SendMessage",
        "ChangeMessageVisibility",
    ):
        return [Need(f"sqs:{op}", _queue(call, p["QueueUrl"]))]
    if svc == "secretsmanager" and op == "GetSecretValue":
        secret = p["SecretId"]
        arn = resolve_secret(secret) if resolve_secret and not secret.startswith("arn:") else secret
        return [Need("secretsmanager:GetSecretValue", arn)]
    if svc == "ssm" and op == "GetParameter":
        name = p["Name"].lstrip("/")
        return [
            Need("ssm:GetParameter", f"arn:aws:ssm:{call.region}:{call.account}:parameter/{name}")
        ]
    if svc == "athena" and op in (
        "StartQueryExecution",
        "GetQueryExecution",
        "GetQueryResults",
        "StopQueryExecution",
    ):
        # The workgroup of an execution is the one it started in: the function has one.
        workgroup = p.get("WorkGroup") or p.get("_workgroup", "primary")
        return [
            Need(
                f"athena:{op}", f"arn:aws:athena:{call.region}:{call.account}:workgroup/{workgroup}"
            )
        ]
    if svc == "sts" and op == "AssumeRole":
        return [Need("sts:AssumeRole", p["RoleArn"])]
    if svc == "organizations" and op == "ListAccounts":
        return [Need("organizations:ListAccounts", "*")]
    if svc == "securityhub" and op == "BatchImportFindings":
        # Authorized on the product the findings name (the account's own default product).
        arns = {f.get("ProductArn", "") for f in p.get("Findings", [])}
        return [Need("securityhub:BatchImportFindings", a) for a in sorted(arns)]
    if svc == "events" and op == "PutEvents":
        buses = {e.get("EventBusName", "default") for e in p.get("Entries", [])}
        return [
            Need(
                "events:PutEvents",
                b
                if b.startswith("arn:")
                else f"arn:aws:events:{call.region}:{call.account}:event-bus/{b}",
            )
            for b in sorted(buses)
        ]
    if svc == "sns" and op == "Publish":
        return [Need("sns:Publish", p.get("TopicArn") or p.get("TargetArn", ""))]
    raise Unmapped(f"{svc}:{op} has no IAM mapping in tests/iam_check.py: add it")


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions_hold(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        if base not in ("StringLike", "StringEquals"):
            return False  # not modelled: fail closed
        for key, wanted in tests.items():
            if key not in context:
                if if_exists:
                    continue
                return False
            value = context[key]
            if base == "StringLike":
                ok = any(_glob(w, value) for w in _as_list(wanted))
            else:
                ok = value in _as_list(wanted)
            if not ok:
                return False
    return True


def _matches(statement: Mapping[str, Any], need: Need) -> bool:
    if not any(_glob(a, need.action, case=False) for a in _as_list(statement.get("Action", []))):
        return False
    if not any(_glob(r, need.resource) for r in _as_list(statement.get("Resource", []))):
        return False
    return _conditions_hold(statement.get("Condition", {}), need.context)


def allowed(statements: Iterable[Mapping[str, Any]], need: Need) -> bool:
    statements = list(statements)
    if any(s.get("Effect") == "Deny" and _matches(s, need) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _matches(s, need) for s in statements)


def denied_calls(
    calls: Iterable[Call],
    statements_of: Mapping[str, list[Mapping[str, Any]]],
    resolve_secret: Any = None,
) -> list[str]:
    """Each call some authorization of which the calling function's role does not grant."""
    problems = []
    for call in calls:
        try:
            wanted = needs(call, resolve_secret)
        except Unmapped as exc:
            problems.append(f"{call.function}: {exc}")
            continue
        for need in wanted:
            if not allowed(statements_of[call.function], need):
                problems.append(
                    f"{call.function}: {call.service}:{call.operation} needs {need.action} on "
                    f"{need.resource}{' with ' + str(dict(need.context)) if need.context else ''}"
                )
    return sorted(set(problems))

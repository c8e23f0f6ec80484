"""What CloudTrail makes of an API call: read or write, global or regional, management or data
event, and the `eventSource:eventName` key the detector and scenarios.json use."""

from __future__ import annotations

import re

Action = tuple[str, str]  # (service prefix of eventSource, eventName)

# Services whose calls CloudTrail records in us-east-1 whatever the caller's region.
GLOBAL_SERVICES = frozenset(
    {"iam", "organizations", "signin", "ce", "account", "cloudfront", "route53", "health"}
)
GLOBAL_ACTIONS = frozenset({("s3", "ListBuckets")})
DATA_ACTIONS = frozenset(
    {("s3", "GetObject"), ("s3", "PutObject"), ("s3", "HeadObject"), ("s3", "DeleteObject")}
)
READ_PREFIXES = (
    "Get", "List", "Describe", "Head", "Lookup", "Search", "Check", "BatchCheck", "BatchGet",
    "Filter", "View", "Decrypt", "Encrypt", "GenerateDataKey", "AssumeRole",
)  # fmt: skip
NOT_READ = frozenset({("ssm", "UpdateInstanceInformation"), ("logs", "StartQuery")})
# lambda:ListFunctions20150331, cloudfront:CreateFunction2020_05_31: the detector drops it.
API_VERSION_SUFFIX = re.compile(r"(?:\d{8}|\d{4}_\d{2}_\d{2})(?:v\d+)?$")


def parse_actions(spec: str) -> list[Action]:
    """Parse `svc:Name svc:Name ...` into actions."""
    out: list[Action] = []
    for item in spec.split():
        svc, name = item.split(":", 1)
        out.append((svc, name))
    return out


def is_read(action: Action) -> bool:
    return action not in NOT_READ and action[1].startswith(READ_PREFIXES)


def is_global(action: Action) -> bool:
    return action[0] in GLOBAL_SERVICES or action in GLOBAL_ACTIONS


def action_key(action: Action) -> str:
    """The action as scenarios.json and the detector name it: `eventSource:eventName`, without
    the API-version suffix some services log (`lambda.amazonaws.com:ListFunctions`)."""
    return f"{action[0]}.amazonaws.com:{API_VERSION_SUFFIX.sub('', action[1])}"

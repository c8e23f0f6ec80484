#!/usr/bin/env python3
"""Generate a deterministic, realistic synthetic AWS organization CloudTrail trail.

The output feeds the README demo and the benchmarks of cloudtrail-anomaly, a detector of
never-before-seen (principal, action) tuples. It has two phases, written under two roots:

    DIR/history/AWSLogs/<o-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
    DIR/live/AWSLogs/<o-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz

with `<file>` = `<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>`: one gzipped
`{"Records": [...]}` delivery object per account, region and 5-minute slot that has events,
stamped with the end of the slot, as an organization trail delivers them. The history phase is
steady benign behaviour: every principal keeps a fixed set of actions, so once the history is
baselined the live phase yields little novelty besides what is injected there on purpose:
attack scenarios modelled on Stratus Red Team techniques and benign novelty (people trying a new
service, a deploy role gaining actions after a release, new hires, a new application role).
`DIR/scenarios.json` lists those injections as ground truth.

`--single-file PATH --target-mb N` instead streams one delivery object of about N MB (10**6
bytes, uncompressed) with a mix of many principals, for throughput benchmarks.

Everything derives from `--seed` through `random.Random`; gzip headers carry mtime 0, and no
clock is read for the output, so the same arguments give byte-identical files. Standard library
only; orjson is used when importable (its output is the same bytes as the json fallback).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import functools
import gzip
import hashlib
import json
import math
import random
import re
import string
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SLOT = 300
HOUR = 3600
DAY = 86400
SLOTS_PER_HOUR = HOUR // SLOT

Action = tuple[str, str]  # (service prefix of eventSource, eventName)
JSON = dict[str, Any]

ALNUM = string.ascii_letters + string.digits
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # what AWS key and unique ids draw from
REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")

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
EVENT_VERSION_108 = frozenset({"ec2messages", "ssm", "kms", "logs", "rds", "route53", "acm"})
IAM_PREFIX = {"monitoring": "cloudwatch"}
# lambda:ListFunctions20150331, cloudfront:CreateFunction2020_05_31: the detector drops it.
API_VERSION_SUFFIX = re.compile(r"(?:\d{8}|\d{4}_\d{2}_\d{2})(?:v\d+)?$")
CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")

# Attacker and office addresses come from the documentation ranges of RFC 5737.
ATTACKER_IPS = ("192.0.2.44", "192.0.2.171", "192.0.2.203", "192.0.2.18", "192.0.2.97")
SLOW_RECON_IP = "203.0.113.58"  # another documentation network than the attacks above

CONSOLE_LOGIN_TO = "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true"
UA_CLI = (
    "aws-cli/2.17.{v} md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#{cmd}"
)
UA_CLI_LINUX = (
    "aws-cli/2.15.{v} md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 "
    "lang/python#3.11.8 md/pyimpl#CPython exec-env/GitHubActions cfg/retry-mode#standard "
    "md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#{cmd}"
)
UA_BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
UA_BOTO_LAMBDA = (
    "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10.219-229.866.amzn2.x86_64 "
    "md/arch#x86_64 lang/python#3.12.4 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
    "cfg/retry-mode#legacy Botocore/1.34.{v}"
)
UA_GO_ECS = (
    "aws-sdk-go-v2/1.30.{v} os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 "
    "exec-env/AWS_ECS_FARGATE api/{svc}#1.{v}.0"
)
UA_SSM_AGENT = "aws-sdk-go/1.44.{v} (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.{v}.0"
UA_TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.8.{v} (+https://www.terraform.io) "
    "terraform-provider-aws/5.5{v}.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64"
)
UA_DATADOG = "aws-sdk-go/1.50.{v} (go1.21.10; linux; amd64) datadog-aws-integration"
UA_PROWLER = (
    "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.11.9 "
    "md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.34.{v} "
    "prowler/4.3.{v}"
)
UA_BOTO_SERVER = (
    "Boto3/1.26.{v} md/Botocore#1.29.{v} ua/2.0 os/linux#5.15.0 md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.29.{v}"
)
UA_ATTACKER_CLI = (
    "aws-cli/1.22.34 Python/3.11.8 Linux/6.6.9-amd64 botocore/1.24.34"  # kali's packaged CLI
)
UA_ATTACKER_BOTO = (
    "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#6.5.0-kali3-amd64 md/arch#x86_64 "
    "lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.57"
)

PEOPLE = (
    "alice.nguyen", "bob.schmidt", "carol.okafor", "dan.kowalski", "erin.garcia",
    "farid.haddad", "grace.lin", "hugo.martin", "ines.costa", "jamal.wright", "kenji.sato",
    "lena.novak", "mateo.rossi", "nora.jensen", "omar.aziz", "priya.raman",
)  # fmt: skip
EMAIL_DOMAIN = "example.com"
ACCOUNT_NAMES = (
    "management", "prod", "staging", "dev", "security", "data", "sandbox", "shared-services",
)  # fmt: skip


def _actions(spec: str) -> list[Action]:
    """Parse `svc:Name svc:Name ...` into actions."""
    out: list[Action] = []
    for item in spec.split():
        svc, name = item.split(":", 1)
        out.append((svc, name))
    return out


# ---------------------------------------------------------------------------------------------
# Behaviour profiles: the fixed action sets of the steady population.

TERRAFORM = _actions(
    """
    sts:GetCallerIdentity iam:GetRole iam:GetRolePolicy iam:ListRolePolicies
    iam:ListAttachedRolePolicies iam:GetPolicy iam:GetPolicyVersion
    iam:ListInstanceProfilesForRole iam:GetOpenIDConnectProvider s3:GetBucketPolicy
    s3:GetBucketAcl s3:GetBucketVersioning s3:GetBucketEncryption s3:GetBucketLogging
    s3:GetBucketTagging s3:GetBucketPublicAccessBlock s3:GetBucketOwnershipControls
    ec2:DescribeVpcs ec2:DescribeSubnets ec2:DescribeSecurityGroups ec2:DescribeRouteTables
    ec2:DescribeNatGateways ec2:DescribeVpcAttribute ec2:DescribeNetworkAcls
    ec2:DescribeInternetGateways kms:DescribeKey kms:GetKeyPolicy kms:GetKeyRotationStatus
    kms:ListResourceTags dynamodb:DescribeTable dynamodb:DescribeContinuousBackups
    dynamodb:DescribeTimeToLive lambda:GetFunction20150331v2 lambda:GetPolicy20150331v2
    lambda:ListVersionsByFunction20150331 logs:DescribeLogGroups logs:ListTagsForResource
    sns:GetTopicAttributes monitoring:DescribeAlarms route53:GetHostedZone
    route53:ListResourceRecordSets acm:DescribeCertificate
    elasticloadbalancing:DescribeLoadBalancers elasticloadbalancing:DescribeTargetGroups
    iam:PutRolePolicy iam:TagRole s3:PutBucketTagging ec2:AuthorizeSecurityGroupIngress
    ec2:CreateTags lambda:UpdateFunctionConfiguration20150331v2 dynamodb:UpdateTable
    logs:PutRetentionPolicy monitoring:PutMetricAlarm ssm:PutParameter
    """
)
GITHUB_DEPLOY = _actions(
    """
    sts:GetCallerIdentity ecr:GetAuthorizationToken ecr:BatchCheckLayerAvailability
    ecr:DescribeImages ecs:DescribeServices ecs:DescribeTaskDefinition ecs:ListTasks
    ecs:DescribeTasks lambda:GetFunctionConfiguration20150331v2 cloudfront:GetInvalidation
    cloudformation:DescribeStacks cloudformation:DescribeChangeSet
    cloudformation:DescribeStackEvents ssm:GetParameter ecr:InitiateLayerUpload
    ecr:UploadLayerPart ecr:CompleteLayerUpload ecr:PutImage ecs:RegisterTaskDefinition
    ecs:UpdateService lambda:UpdateFunctionCode20150331v2 lambda:PublishVersion20150331
    lambda:UpdateAlias20150331 s3:PutObject cloudfront:CreateInvalidation
    cloudformation:CreateChangeSet cloudformation:ExecuteChangeSet
    """
)
APP_PROFILES: dict[str, tuple[str, list[Action]]] = {
    "orders-api": (
        "lambda",
        _actions(
            "dynamodb:DescribeTable kms:Decrypt secretsmanager:GetSecretValue ssm:GetParameter "
            "s3:PutObject s3:GetObject states:StartExecution logs:CreateLogStream"
        ),
    ),
    "image-resizer": (
        "lambda",
        _actions(
            "s3:GetObject s3:PutObject kms:GenerateDataKey kms:Decrypt rekognition:DetectLabels "
            "logs:CreateLogStream"
        ),
    ),
    "billing-webhook": (
        "lambda",
        _actions(
            "secretsmanager:GetSecretValue kms:Decrypt dynamodb:DescribeTable ses:SendEmail "
            "logs:CreateLogStream sts:AssumeRole"
        ),
    ),
    "report-generator": (
        "lambda",
        _actions(
            "athena:StartQueryExecution athena:GetQueryExecution athena:GetQueryResults "
            "glue:GetTable glue:GetDatabase s3:GetObject s3:PutObject kms:GenerateDataKey "
            "logs:CreateLogStream"
        ),
    ),
    "checkout-service": (
        "ecs",
        _actions(
            "secretsmanager:GetSecretValue kms:Decrypt ssm:GetParameters s3:GetObject "
            "dynamodb:DescribeTable sqs:GetQueueUrl"
        ),
    ),
    "search-indexer": (
        "ecs",
        _actions("es:DescribeDomain s3:GetObject kms:Decrypt ssm:GetParameter es:ListTags"),
    ),
}
INSTANCE_ROLE = _actions(
    "ssm:UpdateInstanceInformation ssm:ListInstanceAssociations ec2messages:GetMessages "
    "ec2messages:AcknowledgeMessage ec2:DescribeTags s3:PutObject logs:CreateLogStream"
)
IAM_USER_PROFILES: dict[str, list[Action]] = {
    "backup-sync": _actions(
        "ec2:DescribeVolumes ec2:DescribeSnapshots s3:GetBucketLocation ec2:CreateSnapshot "
        "ec2:CreateTags ec2:DeleteSnapshot s3:PutObject"
    ),
    "legacy-etl": _actions(
        "s3:GetBucketLocation s3:GetObject glue:GetJobRun athena:GetQueryExecution "
        "s3:PutObject glue:StartJobRun athena:StartQueryExecution"
    ),
    "jenkins-deployer": _actions(
        "ecr:GetAuthorizationToken ecr:BatchCheckLayerAvailability ecs:DescribeServices "
        "ecr:PutImage ecs:UpdateService s3:PutObject"
    ),
}
SSO_ROLE_POOLS: dict[str, list[Action]] = {
    "AdministratorAccess": _actions(
        """
        signin:ConsoleLogin sts:GetCallerIdentity iam:ListRoles iam:GetRole iam:ListUsers
        iam:ListPolicies iam:GetAccountSummary ec2:DescribeInstances ec2:DescribeSecurityGroups
        ec2:DescribeVpcs s3:ListBuckets s3:GetBucketPolicy s3:GetBucketLocation
        cloudtrail:LookupEvents cloudtrail:DescribeTrails monitoring:DescribeAlarms
        monitoring:GetMetricData logs:DescribeLogGroups logs:StartQuery
        lambda:ListFunctions20150331 ecs:ListClusters ecs:DescribeServices
        rds:DescribeDBInstances cloudformation:DescribeStacks cloudformation:ListStacks
        health:DescribeEventAggregates ec2:StartInstances ec2:StopInstances ssm:StartSession
        iam:UpdateAssumeRolePolicy
        """
    ),
    "ReadOnlyAccess": _actions(
        """
        signin:ConsoleLogin sts:GetCallerIdentity ec2:DescribeInstances ec2:DescribeVolumes
        s3:ListBuckets s3:GetBucketLocation monitoring:GetMetricData monitoring:DescribeAlarms
        monitoring:ListDashboards monitoring:GetDashboard logs:DescribeLogGroups
        logs:DescribeLogStreams logs:StartQuery cloudtrail:LookupEvents
        lambda:ListFunctions20150331 lambda:GetFunction20150331v2 dynamodb:ListTables
        dynamodb:DescribeTable rds:DescribeDBInstances ecs:ListClusters ecs:ListServices
        ecs:DescribeServices cloudformation:DescribeStacks
        """
    ),
    "PowerUserAccess": _actions(
        """
        signin:ConsoleLogin sts:GetCallerIdentity ec2:DescribeInstances s3:ListBuckets
        s3:GetObject monitoring:GetMetricData monitoring:DescribeAlarms logs:DescribeLogGroups
        logs:DescribeLogStreams logs:StartQuery lambda:ListFunctions20150331
        lambda:GetFunction20150331v2 dynamodb:DescribeTable ecs:ListServices
        ecs:DescribeServices ssm:GetParameter cloudformation:DescribeStacks
        lambda:UpdateFunctionConfiguration20150331v2 ecs:UpdateService ssm:StartSession
        ssm:TerminateSession ssm:PutParameter s3:PutObject ec2:RebootInstances
        """
    ),
}
# Services no steady human uses: what people "try" in the live phase.
EXPLORATION: tuple[tuple[str, list[Action]], ...] = (
    ("bedrock", _actions("bedrock:ListFoundationModels bedrock:ListCustomModels "
                         "bedrock:GetModelInvocationLoggingConfiguration")),
    ("athena", _actions("athena:ListWorkGroups athena:ListDataCatalogs athena:GetWorkGroup")),
    ("eks", _actions("eks:ListClusters eks:DescribeCluster eks:ListNodegroups")),
    ("sagemaker", _actions("sagemaker:ListDomains sagemaker:ListNotebookInstances")),
    ("appsync", _actions("appsync:ListGraphqlApis")),
)  # fmt: skip
DATADOG = _actions(
    """
    ec2:DescribeInstances ec2:DescribeVolumes ec2:DescribeSecurityGroups rds:DescribeDBInstances
    rds:ListTagsForResource elasticloadbalancing:DescribeLoadBalancers
    elasticloadbalancing:DescribeTags lambda:ListFunctions20150331 lambda:ListTags20170331
    dynamodb:ListTables dynamodb:DescribeTable dynamodb:ListTagsOfResource
    monitoring:GetMetricData monitoring:ListMetrics tag:GetResources ecs:ListClusters
    ecs:DescribeClusters sqs:ListQueues sns:ListTopics es:ListDomainNames
    health:DescribeEvents cloudfront:ListDistributions s3:ListBuckets
    """
)
PROWLER = _actions(
    """
    sts:GetCallerIdentity iam:GetAccountPasswordPolicy iam:GenerateCredentialReport
    iam:GetCredentialReport iam:ListUsers iam:ListRoles iam:ListPolicies iam:GetAccountSummary
    iam:ListMFADevices iam:ListAccessKeys iam:ListServerCertificates s3:ListBuckets
    s3:GetBucketPolicy s3:GetBucketAcl s3:GetBucketEncryption s3:GetBucketPublicAccessBlock
    s3:GetBucketVersioning s3:GetBucketLogging ec2:DescribeSecurityGroups ec2:DescribeInstances
    ec2:DescribeVolumes ec2:DescribeSnapshots ec2:DescribeFlowLogs ec2:DescribeVpcs
    ec2:GetEbsEncryptionByDefault cloudtrail:DescribeTrails cloudtrail:GetTrailStatus
    cloudtrail:GetEventSelectors guardduty:ListDetectors guardduty:GetDetector
    config:DescribeConfigurationRecorders config:DescribeConfigurationRecorderStatus
    kms:ListKeys kms:GetKeyRotationStatus kms:DescribeKey securityhub:DescribeHub
    access-analyzer:ListAnalyzers rds:DescribeDBInstances lambda:ListFunctions20150331
    account:GetAlternateContact
    """
)
CONFIG_SLR = _actions(
    "ec2:DescribeInstances ec2:DescribeSecurityGroups ec2:DescribeVpcs ec2:DescribeSubnets "
    "ec2:DescribeNetworkInterfaces ec2:DescribeVolumes iam:GetRole iam:ListRolePolicies "
    "iam:GetAccountAuthorizationDetails s3:GetBucketPolicy lambda:GetFunction20150331v2 "
    "rds:DescribeDBInstances"
)
AUTOSCALING_SLR = _actions(
    "ec2:DescribeInstances ec2:RunInstances ec2:TerminateInstances "
    "elasticloadbalancing:RegisterTargets elasticloadbalancing:DeregisterTargets"
)
ROOT_BILLING = _actions(
    "signin:ConsoleLogin ce:GetCostAndUsage ce:GetCostForecast organizations:ListAccounts "
    "account:GetContactInformation"
)


# ---------------------------------------------------------------------------------------------
# The world: accounts, principals, and their sessions.


@dataclass(slots=True)
class Account:
    idx: int
    account_id: str
    name: str
    home_region: str
    tz: int  # hours east of UTC of the people and traffic of this account
    buckets: list[str]
    kms_keys: list[str]
    secrets: list[str]
    parameters: list[str]
    instance_ids: list[str]
    snapshot_ids: list[str]
    nat_ips: list[str]
    # Roles AWS services assume for workloads: service principal -> [(role ARN, sessions)].
    workload_roles: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)


@dataclass(slots=True)
class Session:
    """One way a principal shows up: session name, addresses, client."""

    name: str
    ips: tuple[str, ...]
    user_agent: str
    console: bool = False
    vpce: str | None = None


@dataclass(slots=True)
class Principal:
    pid: str
    account: Account
    kind: str  # AssumedRole | IAMUser | Root | AWSService | ServiceEvent
    name: str  # role name, user name, or the invoking service
    baseline_arn: str | None
    unique_id: str
    actions: list[Action]
    cum_weights: list[float]
    style: str  # "poisson": independent calls; "run": bursts executing the action list
    pattern: str
    rate: float  # poisson: calls per hour at pattern peak; run: runs per day
    regions: str  # "home" (pinned), "mostly-home" (people) or "all"
    sessions: list[Session]
    invoked_by: str | None = None
    access_key: str = ""
    mfa: bool = False
    scaled: bool = True
    active_from: int | None = None
    run_sample: int = 0  # run: draw about this many calls per region (0: the whole list)
    run_gap: tuple[float, float] = (0.2, 2.5)  # run: seconds between calls
    run_writes: int = 0  # run: up to this many writes per run
    web_identity: str | None = None  # run: starts with AssumeRoleWithWebIdentity (OIDC subject)
    late_actions: list[tuple[int, Action]] = field(default_factory=list)
    ec2_role: bool = False


@dataclass(slots=True)
class Event:
    ts: int
    seq: int
    principal: Principal
    session: Session
    action: Action
    region: str
    ov: JSON | None = None  # scenario overrides: ip, ua, error, req, resp, identity


@dataclass(slots=True)
class World:
    seed: int
    org_id: str
    regions: list[str]
    global_region: str
    t0: int
    live_start: int
    t_end: int
    scale: float
    accounts: list[Account]
    principals: list[Principal]
    seq: int = 0
    akids: dict[tuple[str, str, int], str] = field(default_factory=dict)
    identities: dict[tuple[str, str, int, bool], JSON] = field(default_factory=dict)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def _rand_chars(rng: random.Random, alphabet: str, n: int) -> str:
    size = len(alphabet)
    return "".join([alphabet[b % size] for b in rng.randbytes(n)])


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (uuid.uuid4 would read the OS entropy pool)."""
    h = f"{rng.getrandbits(128) & UUID4_CLEAR | UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@functools.lru_cache(maxsize=64)
def _day(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(days * DAY))


def _iso(ts: int) -> str:
    days, sec = divmod(ts, DAY)
    return f"{_day(days)}T{sec // HOUR:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _aws_date(ts: int) -> str:
    """The `Oct 1, 2026, 9:05:12 AM` form AWS uses inside responseElements."""
    t = time.gmtime(ts)
    hour = t.tm_hour % 12 or 12
    ampm = "AM" if t.tm_hour < 12 else "PM"
    clock = f"{hour}:{t.tm_min:02d}:{t.tm_sec:02d} {ampm}"
    return f"{MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year}, {clock}"


def _is_read(action: Action) -> bool:
    return action not in NOT_READ and action[1].startswith(READ_PREFIXES)


def _source(action: Action) -> str:
    return f"{action[0]}.amazonaws.com"


def action_key(action: Action) -> str:
    """The action as scenarios.json and the detector name it: `eventSource:eventName`, without
    the API-version suffix some services log (`lambda.amazonaws.com:ListFunctions`)."""
    return f"{action[0]}.amazonaws.com:{API_VERSION_SUFFIX.sub('', action[1])}"


def _weights(rng: random.Random, n: int) -> list[float]:
    """Skewed but bounded weights, so a principal has favourite calls and rare ones."""
    ws = [rng.uniform(0.15, 1.0) ** 2 for _ in range(n)]
    cum: list[float] = []
    total = 0.0
    for w in ws:
        total += w
        cum.append(total)
    return cum


def _ips(rng: random.Random, prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{rng.randrange(2, 254)}" for _ in range(n))


def _aws_ip(rng: random.Random) -> str:
    first = rng.choice((3, 18, 34, 35, 44, 52, 54))
    return f"{first}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def _unique_id(rng: random.Random, prefix: str) -> str:
    return prefix + _rand_chars(rng, KEY_ALPHABET, 17)


def build_world(args: argparse.Namespace) -> World:
    rng = random.Random(f"{args.seed}:world")
    regions: list[str] = args.regions
    global_region = "us-east-1" if "us-east-1" in regions else regions[0]
    t0 = int(datetime.combine(args.start, datetime.min.time(), UTC).timestamp())
    live_start = t0 + args.history_days * DAY
    t_end = live_start + args.live_days * DAY
    org_id = "o-" + _rand_chars(rng, string.ascii_lowercase + string.digits, 10)
    org = "acme"

    ids: set[str] = set()
    accounts: list[Account] = []
    for idx in range(args.accounts):
        while True:
            account_id = str(rng.randrange(10**11, 10**12))
            if account_id not in ids and len(set(account_id)) > 3:
                ids.add(account_id)
                break
        name = ACCOUNT_NAMES[idx] if idx < len(ACCOUNT_NAMES) else f"workload-{idx}"
        home = regions[0] if idx % 2 == 0 or len(regions) == 1 else regions[1]
        accounts.append(
            Account(
                idx=idx,
                account_id=account_id,
                name=name,
                home_region=home,
                tz=rng.choice((0, 1, 1, 2, -5)),
                buckets=[f"{org}-{name}-{p}-{account_id}" for p in ("artifacts", "data", "logs")],
                kms_keys=[_uuid(rng) for _ in range(3)],
                secrets=[f"{name}/{s}" for s in ("orders/db", "stripe/api-key", "smtp")],
                parameters=[f"/{name}/{p}" for p in ("orders/api-url", "feature-flags", "db")],
                instance_ids=[f"i-0{_hex(rng, 16)}" for _ in range(rng.randint(2, 4))],
                snapshot_ids=[f"snap-0{_hex(rng, 16)}" for _ in range(4)],
                nat_ips=[_aws_ip(rng) for _ in range(2)],
            )
        )

    world = World(
        seed=args.seed,
        org_id=org_id,
        regions=regions,
        global_region=global_region,
        t0=t0,
        live_start=live_start,
        t_end=t_end,
        scale=args.scale,
        accounts=accounts,
        principals=[],
    )
    people = list(PEOPLE)
    root_history_account = 0 if _scenario_accounts(len(accounts))["root"] != 0 else None
    for acct in accounts:
        world.principals.extend(_population(rng, world, acct, people))
        if acct.idx == root_history_account:
            world.principals.append(_root(rng, acct, pattern="business", rate=0.15))
    return world


def _scenario_accounts(n: int) -> dict[str, int]:
    """Which account each attack lands in: four different ones when there are four."""
    return {"leaked_key": 0, "instance": 1 % n, "evasion": 2 % n, "root": 3 % n, "spree": 4 % n}


def _role(
    rng: random.Random,
    acct: Account,
    name: str,
    actions: list[Action],
    sessions: list[Session],
    *,
    style: str,
    pattern: str,
    rate: float,
    regions: str = "home",
    path: str = "/",
    invoked_by: str | None = None,
    pid: str | None = None,
) -> Principal:
    return Principal(
        pid=pid or f"{acct.account_id}/role/{name}",
        account=acct,
        kind="AssumedRole",
        name=name,
        baseline_arn=f"arn:aws:iam::{acct.account_id}:role{path}{name}",
        unique_id=_unique_id(rng, "AROA"),
        actions=list(actions),
        cum_weights=_weights(rng, len(actions)),
        style=style,
        pattern=pattern,
        rate=rate,
        regions=regions,
        sessions=sessions,
        invoked_by=invoked_by,
    )


def _root(rng: random.Random, acct: Account, *, pattern: str, rate: float) -> Principal:
    return Principal(
        pid=f"{acct.account_id}/root",
        account=acct,
        kind="Root",
        name="root",
        baseline_arn=f"arn:aws:iam::{acct.account_id}:root",
        unique_id=acct.account_id,
        actions=list(ROOT_BILLING),
        cum_weights=_weights(rng, len(ROOT_BILLING)),
        style="run",
        pattern=pattern,
        rate=rate,
        regions="home",
        sessions=[Session("", _ips(rng, "203.0.113", 1), UA_BROWSER, console=True)],
        mfa=True,
        scaled=False,
    )


def _sso_role_name(rng: random.Random, permission_set: str) -> str:
    return f"AWSReservedSSO_{permission_set}_{_hex(rng, 16)}"


def _human(
    rng: random.Random,
    acct: Account,
    role_name: str,
    role_id: str,
    person: str,
    actions: list[Action],
    rate: float,
) -> Principal:
    email = f"{person}@{EMAIL_DOMAIN}"
    office = _ips(rng, "203.0.113", 1) + _ips(rng, "198.51.100", 1)
    cli = UA_CLI.format(v=rng.randrange(10, 40), cmd="{cmd}")
    console_share = rng.uniform(0.3, 0.9)
    sessions = [Session(email, office, UA_BROWSER, console=True)]
    sessions += [Session(email, office, cli)] if console_share < 0.6 else []
    return Principal(
        pid=f"{acct.account_id}/sso/{person}",
        account=acct,
        kind="AssumedRole",
        name=role_name,
        baseline_arn=(
            f"arn:aws:iam::{acct.account_id}:role/aws-reserved/sso.amazonaws.com/{role_name}"
        ),
        unique_id=role_id,
        actions=actions,
        cum_weights=_weights(rng, len(actions)),
        style="run",
        pattern="business",
        rate=rate,
        regions="mostly-home",
        sessions=sessions,
        run_sample=4,
        run_gap=(2.0, 45.0),
    )


def _population(
    rng: random.Random, world: World, acct: Account, people: list[str]
) -> list[Principal]:
    a = acct.account_id
    out: list[Principal] = []
    nat = tuple(acct.nat_ips)

    # CI/CD: terraform from a runner in the shared account, GitHub Actions through OIDC.
    tf_ua = UA_TERRAFORM.format(v=rng.randrange(0, 9))
    tf = _role(
        rng,
        acct,
        "TerraformDeployRole",
        TERRAFORM,
        [Session(f"terraform-{_hex(rng, 8)}", nat, tf_ua)],
        style="run",
        pattern="ci",
        rate=2.5,
    )
    tf.run_writes = 4
    out.append(tf)
    gh_ua = UA_CLI_LINUX.format(v=rng.randrange(10, 40), cmd="{cmd}")
    gh_ips = tuple(
        f"{rng.choice((4, 20, 40, 52))}.{rng.randrange(1, 255)}.{rng.randrange(256)}"
        f".{rng.randrange(1, 255)}"
        for _ in range(12)
    )
    gh = _role(
        rng,
        acct,
        "github-actions-deploy",
        GITHUB_DEPLOY,
        [Session("GitHubActions", gh_ips, gh_ua)],
        style="run",
        pattern="ci",
        rate=3.5,
    )
    gh.run_writes = 99
    gh.web_identity = f"repo:acme/{acct.name}-services:ref:refs/heads/main"
    out.append(gh)

    # Applications: Lambda functions, ECS services, an EC2 fleet with the SSM agent.
    names = list(APP_PROFILES)
    rng.shuffle(names)
    lambdas = [n for n in names if APP_PROFILES[n][0] == "lambda"][: rng.randint(2, 3)]
    ecs = [n for n in names if APP_PROFILES[n][0] == "ecs"][: rng.randint(1, 2)]
    for app in lambdas + ecs:
        runtime, actions = APP_PROFILES[app]
        role_name = f"{app}-{'lambda' if runtime == 'lambda' else 'task'}-role"
        if runtime == "lambda":
            ua = UA_BOTO_LAMBDA.format(v=rng.randrange(100, 160))
            sessions = [Session(app, (_aws_ip(rng), _aws_ip(rng)), ua)]
        else:
            ua = UA_GO_ECS.format(v=rng.randrange(10, 40), svc="secretsmanager")
            vpce = f"vpce-0{_hex(rng, 16)}"
            sessions = [
                Session(
                    _hex(rng, 32),
                    (f"10.20.{rng.randrange(256)}.{rng.randrange(2, 254)}",),
                    ua,
                    vpce=vpce,
                )
                for _ in range(3)
            ]
        p = _role(
            rng,
            acct,
            role_name,
            actions,
            sessions,
            style="run",
            pattern="app",
            rate=rng.uniform(15, 32),
        )
        p.run_sample, p.run_gap = 3, (0.0, 1.5)
        out.append(p)
        service = "lambda.amazonaws.com" if runtime == "lambda" else "ecs-tasks.amazonaws.com"
        acct.workload_roles.setdefault(service, []).append(
            (p.baseline_arn or "", [s.name for s in sessions])
        )
    ssm_ua = UA_SSM_AGENT.format(v=rng.randrange(10, 50))
    out.append(
        _role(
            rng,
            acct,
            "app-server-instance-role",
            INSTANCE_ROLE,
            [
                Session(i, (f"10.20.{rng.randrange(256)}.{rng.randrange(2, 254)}",), ssm_ua)
                for i in acct.instance_ids
            ],
            style="run",
            pattern="flat",
            rate=24.0,
        )
    )
    out[-1].ec2_role = True
    acct.workload_roles["ec2.amazonaws.com"] = [(out[-1].baseline_arn or "", acct.instance_ids)]
    out[-1].run_sample, out[-1].run_gap = 3, (0.0, 2.0)

    # A legacy IAM user with a long-lived access key.
    user = list(IAM_USER_PROFILES)[acct.idx % len(IAM_USER_PROFILES)]
    user_actions = IAM_USER_PROFILES[user]
    out.append(
        Principal(
            pid=f"{a}/user/{user}",
            account=acct,
            kind="IAMUser",
            name=user,
            baseline_arn=f"arn:aws:iam::{a}:user/{user}",
            unique_id=_unique_id(rng, "AIDA"),
            actions=list(user_actions),
            cum_weights=_weights(rng, len(user_actions)),
            style="run",
            pattern="nightly",
            rate=1.0,
            regions="home",
            sessions=[Session("", (nat[0],), UA_BOTO_SERVER.format(v=rng.randrange(10, 90)))],
            access_key="AKIA" + _rand_chars(rng, KEY_ALPHABET, 16),
            run_writes=3,
        )
    )

    # People through IAM Identity Center.
    role_ids: dict[str, tuple[str, str]] = {}
    for ps in SSO_ROLE_POOLS:
        role_ids[ps] = (_sso_role_name(rng, ps), _unique_id(rng, "AROA"))
    for person in rng.sample(people, rng.randint(3, 6)):
        ps = rng.choice(list(SSO_ROLE_POOLS))
        pool = SSO_ROLE_POOLS[ps]
        k = max(6, int(len(pool) * rng.uniform(0.5, 0.85)))
        actions = [pool[0], *rng.sample(pool[1:], k - 1)]
        role_name, role_id = role_ids[ps]
        out.append(_human(rng, acct, role_name, role_id, person, actions, rng.uniform(6, 15)))

    # Monitoring: a Datadog integration polling every region, a nightly prowler scan.
    out.append(
        _role(
            rng,
            acct,
            "DatadogIntegrationRole",
            DATADOG,
            [
                Session(
                    "DatadogAWSIntegration",
                    ("3.233.146.28", "3.233.147.21"),
                    UA_DATADOG.format(v=rng.randrange(10, 99)),
                )
            ],
            style="run",
            pattern="flat",
            rate=7.0,
            regions="all",
        )
    )
    out[-1].run_sample = 4
    out.append(
        _role(
            rng,
            acct,
            "SecurityAuditRole",
            PROWLER,
            [
                Session(
                    f"prowler-{_hex(rng, 8)}",
                    (world.accounts[0].nat_ips[0],),
                    UA_PROWLER.format(v=rng.randrange(10, 99)),
                )
            ],
            style="run",
            pattern="nightly",
            rate=1.0,
            regions="all",
        )
    )

    # AWS services: service-linked roles, AWSService callers and service events.
    out.append(
        _role(
            rng,
            acct,
            "AWSServiceRoleForConfig",
            CONFIG_SLR,
            [Session("AWSConfig-Describe", ("config.amazonaws.com",), "config.amazonaws.com")],
            style="run",
            pattern="flat",
            rate=10.0,
            regions="all",
            path="/aws-service-role/config.amazonaws.com/",
            invoked_by="config.amazonaws.com",
        )
    )
    out[-1].run_sample = 2
    out.append(
        _role(
            rng,
            acct,
            "AWSServiceRoleForAutoScaling",
            AUTOSCALING_SLR,
            [Session("AutoScaling", ("autoscaling.amazonaws.com",), "autoscaling.amazonaws.com")],
            style="poisson",
            pattern="app",
            rate=0.8,
            path="/aws-service-role/autoscaling.amazonaws.com/",
            invoked_by="autoscaling.amazonaws.com",
        )
    )
    for service, actions, rate, kind in (
        ("lambda.amazonaws.com", _actions("sts:AssumeRole"), 1.5, "AWSService"),
        ("ecs-tasks.amazonaws.com", _actions("sts:AssumeRole"), 1.0, "AWSService"),
        ("ec2.amazonaws.com", _actions("sts:AssumeRole"), 0.8, "AWSService"),
        ("config.amazonaws.com", _actions("s3:GetBucketAcl"), 0.5, "AWSService"),
        ("kms.amazonaws.com", _actions("kms:RotateKey"), 0.03, "ServiceEvent"),
        (
            "secretsmanager.amazonaws.com",
            _actions("secretsmanager:RotationStarted secretsmanager:RotationSucceeded"),
            0.06,
            "ServiceEvent",
        ),
    ):
        out.append(_service(rng, acct, service, actions, rate, kind))
    if acct.idx == 0:
        # The organization trail's bucket lives here; CloudTrail checks its ACL.
        out.append(
            _service(
                rng,
                acct,
                "cloudtrail.amazonaws.com",
                _actions("s3:GetBucketAcl"),
                2.0,
                "AWSService",
            )
        )
    return out


def _service(
    rng: random.Random, acct: Account, service: str, actions: list[Action], rate: float, kind: str
) -> Principal:
    ip = service if kind == "AWSService" else "AWS Internal"
    return Principal(
        pid=f"{acct.account_id}/{kind}/{service}/{actions[0][1]}",
        account=acct,
        kind=kind,
        name=service,
        baseline_arn=None,
        unique_id="",
        actions=actions,
        cum_weights=_weights(rng, len(actions)),
        style="poisson",
        pattern="flat",
        rate=rate,
        regions="home",
        sessions=[Session("", (ip,), ip)],
        invoked_by=service if kind == "AWSService" else "AWS Internal",
    )


# ---------------------------------------------------------------------------------------------
# Time patterns.


def _factor(pattern: str, hod: int, weekday: int) -> float:
    weekend = weekday >= 5
    if pattern == "business":
        base = 1.0 if 9 <= hod < 18 else 0.35 if hod in (8, 18, 19) else 0.02
        return base * (0.06 if weekend else 1.0)
    if pattern == "ci":
        base = 1.0 if 9 <= hod < 19 else 0.15 if hod in (7, 8, 19, 20) else 0.0
        return base * (0.04 if weekend else 1.0)
    if pattern == "app":
        return (0.55 + 0.45 * math.cos((hod - 14) / 24 * 2 * math.pi)) * (0.7 if weekend else 1)
    if pattern == "nightly":
        return 1.0 if hod == 2 else 0.0
    return 1.0  # flat


PATTERNS = ("business", "ci", "app", "nightly", "flat")
FACTORS = {p: [[_factor(p, h, d) for h in range(24)] for d in range(7)] for p in PATTERNS}
DAY_NORM = {p: sum(FACTORS[p][0]) for p in PATTERNS}  # a weekday's total


def _hour_factor(p: Principal, hour_start: int) -> float:
    local = hour_start + p.account.tz * HOUR
    weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday
    return FACTORS[p.pattern][weekday][(local // HOUR) % 24]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k = 0
    prod = rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


# ---------------------------------------------------------------------------------------------
# Event generation.


def _region_for(world: World, p: Principal, action: Action, rng: random.Random) -> str:
    if _is_global(action):
        return world.global_region
    if p.regions == "all":
        return rng.choice(world.regions)
    if p.regions == "mostly-home" and rng.random() < 0.12:
        return rng.choice(world.regions)
    return p.account.home_region


def _pick_session(p: Principal, rng: random.Random, action: Action | None = None) -> Session:
    if len(p.sessions) == 1:
        return p.sessions[0]
    if action is not None and action[1] == "ConsoleLogin":
        return next((s for s in p.sessions if s.console), p.sessions[0])
    return rng.choice(p.sessions)


def _is_global(action: Action) -> bool:
    return action[0] in GLOBAL_SERVICES or action in GLOBAL_ACTIONS


def _run(
    world: World,
    p: Principal,
    start: int,
    rng: random.Random,
    *,
    full: bool = False,
    extra: Sequence[Action] = (),
) -> list[Event]:
    """One burst of calls by one session.

    A pipeline or a scan executes its whole action list in order (reads, then some writes); a
    poll, an invocation or a person clicking around draws `run_sample` calls on average from
    the principal's weighted actions. `full` executes every action once.
    """
    logins = [a for a in p.actions if a[1] == "ConsoleLogin"]
    sess = _pick_session(p, rng, logins[0] if full and logins else None)
    signs_in = sess.console  # only a browser session signs in
    late = [a for since, a in p.late_actions if start >= since]
    out: list[Event] = []
    t = float(start)
    lo, hi = p.run_gap

    def emit(action: Action, region: str, ov: JSON | None = None) -> None:
        nonlocal t
        out.append(Event(int(t), world.next_seq(), p, sess, action, region, ov))
        t += rng.uniform(lo, hi)

    if p.web_identity:
        emit(("sts", "AssumeRoleWithWebIdentity"), p.account.home_region, {"identity": "web"})
    if p.regions == "all":
        regions = world.regions
    elif p.regions == "mostly-home" and rng.random() < 0.12:
        regions = [rng.choice(world.regions)]
    else:
        regions = [p.account.home_region]
    if p.run_sample and not full:
        total = p.cum_weights[-1]
        for i, region in enumerate(regions):
            k = rng.randint(1, 2 * p.run_sample - 1)
            chosen = [
                p.actions[bisect.bisect(p.cum_weights, rng.random() * total)] for _ in range(k)
            ]
            # Signing in comes first, and only in the browser.
            chosen = [a for a in chosen if a in logins and signs_in] + [
                a for a in chosen if a not in logins
            ]
            for action in chosen:
                if not (_is_global(action) and i > 0):
                    emit(action, world.global_region if _is_global(action) else region)
    else:
        reads = [a for a in p.actions if _is_read(a)]
        writes = [a for a in p.actions if not _is_read(a) and a not in logins]
        for action in logins if signs_in else []:
            emit(action, world.global_region)
        for i, region in enumerate(regions):
            for action in reads:
                if not (_is_global(action) and i > 0):
                    emit(action, world.global_region if _is_global(action) else region)
        n = len(writes) if full else min(len(writes), rng.randint(0, p.run_writes))
        for action in writes if n == len(writes) else rng.sample(writes, n):
            emit(action, world.global_region if _is_global(action) else regions[0])
    for action in [*late, *extra]:
        emit(action, world.global_region if _is_global(action) else regions[0])
    return out


def generate_hour(world: World, hour_start: int, rng: random.Random) -> list[Event]:
    """The steady population's events whose run or call starts in this hour."""
    out: list[Event] = []
    for p in world.principals:
        if p.active_from is not None and hour_start + HOUR <= p.active_from:
            continue
        f = _hour_factor(p, hour_start)
        if f <= 0.0:
            continue
        scale = world.scale if p.scaled else 1.0
        if p.style == "run":
            expected = p.rate * scale * f / DAY_NORM[p.pattern]
            if p.pattern == "nightly":  # a scheduled job: no skipped nights
                runs = int(expected) + (rng.random() < expected % 1)
            else:
                runs = _poisson(rng, expected)
            for _ in range(runs):
                start = hour_start + rng.randrange(HOUR)
                if p.active_from is None or start >= p.active_from:
                    out.extend(_run(world, p, start, rng))
            continue
        total = p.cum_weights[-1]
        for _ in range(_poisson(rng, p.rate * scale * f)):
            ts = hour_start + rng.randrange(HOUR)
            if p.active_from is not None and ts < p.active_from:
                continue
            action = p.actions[bisect.bisect(p.cum_weights, rng.random() * total)]
            out.append(
                Event(
                    ts,
                    world.next_seq(),
                    p,
                    _pick_session(p, rng, action),
                    action,
                    _region_for(world, p, action, rng),
                )
            )
    return out


def _busy_time(world: World, p: Principal, first: int, days: int, rng: random.Random) -> int:
    """A random time in [first, first + days) weighted by the principal's activity pattern."""
    hours = [first + h * HOUR for h in range(days * 24)]
    weights = [_hour_factor(p, h) for h in hours]
    if sum(weights) <= 0:
        weights = [1.0] * len(hours)
    return rng.choices(hours, weights=weights)[0] + rng.randrange(HOUR - 600)


def coverage_events(world: World, history_days: int) -> list[Event]:
    """Each steady principal does each of its actions at least once early in the history.

    Rare actions drawn at random could otherwise first appear in the live phase and read as
    novelty nobody injected.
    """
    rng = random.Random(f"{world.seed}:coverage")
    days = min(history_days, 3)
    out: list[Event] = []
    for p in world.principals:
        if p.active_from is not None:
            continue
        if p.style == "run":
            out.extend(_run(world, p, _busy_time(world, p, world.t0, days, rng), rng, full=True))
            continue
        for action in p.actions:
            ts = _busy_time(world, p, world.t0, days, rng)
            out.append(
                Event(
                    ts,
                    world.next_seq(),
                    p,
                    _pick_session(p, rng, action),
                    action,
                    _region_for(world, p, action, rng),
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# Scenarios injected in the live phase.


@dataclass(slots=True)
class Scenario:
    kind: str
    name: str
    principal: Principal
    description: str
    events: list[Event] = field(default_factory=list)
    context: list[Event] = field(default_factory=list)  # injected too, but nothing new

    def to_json(self) -> JSON:
        seen: list[Action] = []
        for ev in sorted(self.events, key=lambda e: (e.ts, e.seq)):
            if ev.action not in seen:
                seen.append(ev.action)
        p = self.principal
        session = self.events[0].session.name or None
        key = p.baseline_arn
        if session and p.name.startswith("AWSReservedSSO_"):
            key = f"{p.baseline_arn}#{session}"  # the detector baselines SSO roles per person
        return {
            "kind": self.kind,
            "name": self.name,
            "account_id": p.account.account_id,
            "principal_arn": p.baseline_arn,
            "principal_key": key,
            "principal_type": p.kind,
            "session_name": session,
            "actions": [action_key(a) for a in seen],
            "start": _iso(min(e.ts for e in self.events)),
            "end": _iso(max(e.ts for e in self.events)),
            "description": self.description,
        }


class _Script:
    """Builds a scenario's events one call after another."""

    def __init__(self, world: World, p: Principal, sess: Session, t: int, rng: random.Random):
        self.world, self.p, self.sess, self.t, self.rng = world, p, sess, t, rng
        self.events: list[Event] = []

    def call(
        self,
        spec: str,
        *,
        gap: tuple[int, int] = (3, 25),
        region: str | None = None,
        **ov: Any,
    ) -> None:
        svc, name = spec.split(":", 1)
        action = (svc, name)
        reg = region or _region_for(self.world, self.p, action, self.rng)
        if "ip" not in ov:
            ov["ip"] = self.sess.ips[0]
        self.events.append(Event(self.t, self.world.next_seq(), self.p, self.sess, action, reg, ov))
        self.t += self.rng.randint(*gap)

    def wait(self, seconds: int) -> None:
        self.t += seconds


def _live_time(world: World, frac: float, hour: int, minute: int, acct: Account) -> int:
    """A time in the live phase: a day at `frac` of it, at a local hour:minute of `acct`."""
    days = (world.t_end - world.live_start) // DAY
    day = min(days - 1, int(frac * days))
    ts = world.live_start + day * DAY + (hour - acct.tz) * HOUR + minute * 60
    return min(max(ts, world.live_start + 60), world.t_end - 3 * HOUR)


def _find(world: World, acct: Account, pred: Callable[[Principal], bool]) -> Principal:
    return next(p for p in world.principals if p.account is acct and pred(p))


def build_scenarios(world: World) -> list[Scenario]:
    rng = random.Random(f"{world.seed}:scenarios")
    accts = world.accounts
    where = _scenario_accounts(len(accts))
    out: list[Scenario] = []

    # (a) Leaked IAM user access key: discovery from a new address, then persistence.
    acct = accts[where["leaked_key"]]
    user = _find(world, acct, lambda p: p.kind == "IAMUser")
    attacker = Session("", (ATTACKER_IPS[0],), UA_ATTACKER_CLI)
    s = _Script(world, user, attacker, _live_time(world, 0.3, 2, 17, acct), rng)
    s.call("sts:GetCallerIdentity", region=world.global_region)
    s.call("iam:ListUsers")
    s.call("iam:ListRoles")
    s.call("s3:ListBuckets")
    for region in world.regions:
        s.call("ec2:DescribeInstances", region=region, gap=(2, 6))
    s.wait(7 * 60)
    backdoor = "support-automation"
    s.call("iam:CreateUser", req={"userName": backdoor})
    s.call("iam:CreateAccessKey", req={"userName": backdoor})
    s.call(
        "iam:AttachUserPolicy",
        req={"userName": backdoor, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
    )
    s.call("iam:CreateLoginProfile", req={"userName": backdoor, "passwordResetRequired": False})
    out.append(
        Scenario(
            "attack",
            "leaked-access-key-discovery-and-persistence",
            user,
            f"Access key of IAM user {user.name} used from {ATTACKER_IPS[0]}: discovery "
            f"(GetCallerIdentity, ListUsers, ListRoles, ListBuckets, DescribeInstances in every "
            f"region), then a backdoor admin user {backdoor} with a key and a console password.",
            s.events,
        )
    )
    _backdoor_used_at_once(world, user, backdoor, s.t + 4 * 60, out)

    # (b) Defense evasion by the CI deploy role, split over two delivery files.
    acct = accts[where["evasion"]]
    gh = _find(world, acct, lambda p: p.name == "github-actions-deploy")
    sess = Session("GitHubActions", (ATTACKER_IPS[1],), UA_ATTACKER_BOTO)
    start = _live_time(world, 0.45, 23, 41, acct)
    start -= start % SLOT - 20  # early in a slot, so the second half lands two slots later
    s = _Script(world, gh, sess, start, rng)
    trail = f"arn:aws:cloudtrail:{acct.home_region}:{acct.account_id}:trail/{acct.name}-audit"
    s.call("cloudtrail:DescribeTrails", region=acct.home_region)
    s.call("cloudtrail:StopLogging", region=acct.home_region, req={"name": trail})
    s.call("guardduty:ListDetectors", region=acct.home_region)
    s.call("guardduty:DeleteDetector", region=acct.home_region, req={"detectorId": _hex(rng, 32)})
    s.t = start + 11 * 60
    s.call(
        "config:StopConfigurationRecorder",
        region=acct.home_region,
        req={"configurationRecorderName": "default"},
    )
    s.call("cloudtrail:DeleteTrail", region=acct.home_region, req={"name": trail})
    out.append(
        Scenario(
            "attack",
            "defense-evasion-disable-logging",
            gh,
            "The GitHub Actions deploy role, at night from an unknown address, stops and deletes "
            "the account trail, deletes the GuardDuty detector and stops AWS Config "
            "(Stratus: cloudtrail-stop, cloudtrail-delete).",
            s.events,
        )
    )

    # (c) Root console login in a member account, then organization and billing changes.
    acct = accts[where["root"]]
    root = _root(rng, acct, pattern="business", rate=0.0)
    root.active_from = world.t_end  # never generated by the steady loop
    root.sessions = [Session("", (ATTACKER_IPS[2],), UA_BROWSER, console=True)]
    root.mfa = False
    world.principals.append(root)
    s = _Script(world, root, root.sessions[0], _live_time(world, 0.6, 3, 5, acct), rng)
    s.call("signin:ConsoleLogin", mfa="No")
    s.call("organizations:DescribeOrganization", gap=(20, 60))
    s.call("ce:GetCostAndUsage", gap=(30, 90))
    s.call("account:PutAlternateContact", gap=(20, 60))
    s.call("iam:CreateAccessKey", gap=(20, 40))
    s.call(
        "organizations:LeaveOrganization",
        error=(
            "ConstraintViolationException",
            "You cannot remove an account from your organization if the account doesn't have the "
            "information required to operate as a standalone account.",
        ),
    )
    out.append(
        Scenario(
            "attack",
            "root-console-login-org-and-billing",
            root,
            "Root signs in to the console without MFA from an unknown address, looks at the "
            "organization and costs, changes the billing contact, creates a root access key and "
            "tries to leave the organization (Stratus: organizations-leave).",
            s.events,
        )
    )

    # (d) Instance-profile credentials stolen from EC2 and used from outside.
    acct = accts[where["instance"]]
    inst = _find(world, acct, lambda p: p.ec2_role)
    sess = Session(inst.sessions[0].name, (ATTACKER_IPS[3],), UA_ATTACKER_CLI)
    s = _Script(world, inst, sess, _live_time(world, 0.75, 14, 22, acct), rng)
    home = acct.home_region
    s.call("sts:GetCallerIdentity", region=home)
    for secret in acct.secrets:
        s.call("secretsmanager:GetSecretValue", region=home, req={"secretId": secret})
    s.call("ssm:GetParameters", region=home, req={"names": acct.parameters, "withDecryption": True})
    s.call("s3:ListBuckets")
    for i in range(6):
        s.call(
            "s3:GetObject", region=home, gap=(1, 4), key=f"exports/customers-2026-{i + 1:02d}.csv"
        )
    s.call("ec2:DescribeSnapshots", region=home)
    s.call(
        "ec2:ModifySnapshotAttribute",
        region=home,
        req={
            "snapshotId": acct.snapshot_ids[0],
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}},
        },
    )
    out.append(
        Scenario(
            "attack",
            "ec2-instance-credentials-exfiltration",
            inst,
            f"Credentials of instance {sess.name} used from {ATTACKER_IPS[3]}: secrets and "
            "parameters read, bucket objects downloaded, an EBS snapshot shared with an outside "
            "account (Stratus: ec2-steal-instance-credentials, ec2-share-ebs-snapshot).",
            s.events,
        )
    )

    # (e) Stolen Lambda credentials: a spree of denied discovery calls.
    acct = accts[where["spree"]]
    fn = _find(world, acct, lambda p: p.name.endswith("-lambda-role"))
    sess = Session(fn.sessions[0].name, (ATTACKER_IPS[4],), UA_ATTACKER_BOTO)
    s = _Script(world, fn, sess, _live_time(world, 0.85, 4, 48, acct), rng)
    s.call("sts:GetCallerIdentity", region=acct.home_region)
    for spec in (
        "iam:ListRoles",
        "iam:ListUsers",
        "iam:GetAccountAuthorizationDetails",
        "ec2:DescribeInstances",
        "s3:ListBuckets",
        "secretsmanager:ListSecrets",
        "lambda:ListFunctions20150331",
        "kms:ListKeys",
        "organizations:ListAccounts",
        "iam:CreateUser",
    ):
        s.call(
            spec,
            region=None if spec.startswith(("iam", "s3", "org")) else acct.home_region,
            gap=(1, 8),
            error="denied",
        )
    out.append(
        Scenario(
            "attack",
            "denied-api-spree-stolen-lambda-credentials",
            fn,
            f"Credentials of Lambda function {sess.name} used from {ATTACKER_IPS[4]} for "
            "discovery; "
            "almost every call is denied (AccessDenied, Client.UnauthorizedOperation).",
            s.events,
        )
    )

    # (f) Low and slow (issue 16): another IAM user's key used from a new network for one new
    # read a day over four days; no single day makes a burst or anything above informational.
    acct = accts[where["spree"]]
    others = [p for p in world.principals if p.kind == "IAMUser" and p is not user]
    mine = [p for p in others if p.account is acct]
    if mine or others:  # a small organization may have no second IAM user: then no (f)
        _slow_recon(world, (mine or others)[0], out)

    out.extend(_benign_scenarios(world, rng))
    return out


def _backdoor_used_at_once(
    world: World, creator: Principal, name: str, start: int, out: list[Scenario]
) -> None:
    """(a2): the user the intruder just created, used minutes later with its new key.

    A principal with no history at all: without lineage its every action would be "learning".
    """
    rng = random.Random(f"{world.seed}:backdoor")  # the other scenarios keep their draws
    acct = creator.account
    user = Principal(
        pid=f"{acct.account_id}/user/{name}",
        account=acct,
        kind="IAMUser",
        name=name,
        baseline_arn=f"arn:aws:iam::{acct.account_id}:user/{name}",
        unique_id=_unique_id(rng, "AIDA"),
        actions=[],
        cum_weights=[],
        style="poisson",
        pattern="flat",
        rate=0.0,
        regions="home",
        sessions=[Session("", (ATTACKER_IPS[0],), UA_ATTACKER_BOTO)],
        scaled=False,
    )
    s = _Script(world, user, user.sessions[0], start, rng)
    home = acct.home_region
    s.call("sts:GetCallerIdentity", region=world.global_region)
    s.call("iam:ListAttachedUserPolicies", req={"userName": name})
    s.call("secretsmanager:ListSecrets", region=home)
    for secret in acct.secrets:
        s.call("secretsmanager:GetSecretValue", region=home, req={"secretId": secret})
    s.call("s3:ListBuckets")
    out.append(
        Scenario(
            "attack",
            "backdoor-user-used-at-once",
            user,
            f"The backdoor user {name}, created by {creator.name}'s stolen key, used minutes "
            f"later from {ATTACKER_IPS[0]} with its new access key: identity, its own policies, "
            "then every secret (issue 16: no learning period for an intruder's creation).",
            s.events,
        )
    )


def _root_housekeeping(world: World, out: list[Scenario]) -> None:
    """Benign: the account owner signs in as root with MFA from the usual address and reads
    security and billing settings it had not read before (issue 16: a quieter root)."""
    roots = [p for p in world.principals if p.kind == "Root" and p.rate > 0]
    if not roots:
        return
    root = roots[0]
    rng = random.Random(f"{world.seed}:root-housekeeping")
    s = _Script(world, root, root.sessions[0], _live_time(world, 0.2, 11, 5, root.account), rng)
    s.call("signin:ConsoleLogin", mfa="Yes", region=world.global_region)
    s.call("account:GetContactInformation", gap=(20, 60))
    s.call("iam:ListMFADevices", gap=(20, 60))
    s.call("account:GetAlternateContact", gap=(20, 60))
    s.call("ce:GetCostAndUsage", gap=(20, 60))
    new = {("iam", "ListMFADevices"), ("account", "GetAlternateContact")}
    out.append(
        Scenario(
            "benign_novelty",
            "root-housekeeping-with-mfa",
            root,
            "The account owner signs in as root with MFA from the usual address, checks the MFA "
            "devices and the alternate contacts, and looks at the costs.",
            [e for e in s.events if e.action in new],
            [e for e in s.events if e.action not in new],
        )
    )


def _ci_writes_iam(world: World, out: list[Scenario]) -> None:
    """Benign: a release makes the deploy role create a role and instance profile for a new
    service, then read it back in every run (issue 16: CI roles legitimately write IAM)."""
    accts = world.accounts
    acct = accts[3 % len(accts)]
    tfs = [p for p in world.principals if p.name == "TerraformDeployRole" and p.account is acct]
    if not tfs:
        return
    tf = tfs[0]
    rng = random.Random(f"{world.seed}:ci-writes-iam")
    t = _live_time(world, 0.65, 15, 10, acct)
    new = _actions(
        "iam:CreateRole iam:AttachRolePolicy iam:CreateInstanceProfile "
        "iam:AddRoleToInstanceProfile iam:GetInstanceProfile"
    )
    tf.late_actions.append((t + HOUR, ("iam", "GetInstanceProfile")))
    events = _run(world, tf, t, rng, full=True, extra=new)
    out.append(
        Scenario(
            "benign_novelty",
            "ci-role-writes-iam",
            tf,
            "A release adds a service with its own EC2 role: TerraformDeployRole creates the role, "
            "attaches a managed policy, creates the instance profile, and reads it back in every "
            "run afterwards.",
            [e for e in events if e.action in new],
            [e for e in events if e.action not in new],
        )
    )


def _slow_recon(world: World, slow_user: Principal, out: list[Scenario]) -> None:
    """(f): one new read a day over four days from a new network and SDK."""
    sess = Session("", (SLOW_RECON_IP,), UA_ATTACKER_BOTO)
    slow_rng = random.Random(f"{world.seed}:slow-recon")  # the other scenarios keep theirs
    slow_start = _live_time(world, 0.1, 9, 40, slow_user.account)
    # a day apart when the live phase is long enough (it is by default), else closer
    slow_step = max(HOUR, min(DAY, (world.t_end - 3 * HOUR - slow_start) // 3))
    events: list[Event] = []
    for day, spec in enumerate(
        (
            "secretsmanager:ListSecrets",
            "ssm:DescribeParameters",
            "kms:ListKeys",
            "dynamodb:ListTables",
        )
    ):
        s = _Script(
            world,
            slow_user,
            sess,
            slow_start + day * slow_step,
            slow_rng,
        )
        s.call(spec, region=slow_user.account.home_region)
        events += s.events
    out.append(
        Scenario(
            "attack",
            "slow-recon-stolen-key-new-network",
            slow_user,
            f"Access key of IAM user {slow_user.name} used from {SLOW_RECON_IP} with an SDK it "
            "never used, for one new read a day over four days (issue 16: low and slow).",
            events,
        )
    )


def _benign_scenarios(world: World, rng: random.Random) -> list[Scenario]:
    accts = world.accounts
    out: list[Scenario] = []

    # People trying a service they never used, in different accounts.
    humans = [p for p in world.principals if "/sso/" in p.pid]
    explorers: list[Principal] = []
    want = rng.randint(2, 4)
    for k in range(len(accts) * 4):
        acct = accts[k % len(accts)]
        cands = [
            p
            for p in humans
            if p.account is acct and all(e.baseline_arn != p.baseline_arn for e in explorers)
        ]
        if cands:
            explorers.append(rng.choice(cands))
        if len(explorers) == want:
            break
    services = list(EXPLORATION)
    rng.shuffle(services)
    for i, (p, (service, pool)) in enumerate(zip(explorers, services, strict=False)):
        actions = pool[: rng.randint(1, min(3, len(pool)))]
        t = _live_time(world, 0.15 + 0.2 * i, 10 + i, rng.randrange(60), p.account)
        s = _Script(world, p, p.sessions[0], t, rng)
        for _ in range(rng.randint(1, 3)):
            for a in actions:
                s.call(f"{a[0]}:{a[1]}", gap=(10, 90))
            s.wait(rng.randrange(300, 1800))
        person = p.sessions[0].name
        out.append(
            Scenario(
                "benign_novelty",
                f"human-tries-{service}",
                p,
                f"{person} opens {service} for the first time ({len(actions)} read call(s)).",
                s.events,
            )
        )

    # A deploy role gains two actions after a release of the infrastructure code.
    acct = accts[1 % len(accts)]
    tf = _find(world, acct, lambda p: p.name == "TerraformDeployRole")
    t = _live_time(world, 0.5, 10, 30, acct)
    new = [("sqs", "CreateQueue"), ("sqs", "GetQueueAttributes")]
    tf.late_actions.append((t + HOUR, new[1]))
    events = _run(world, tf, t, rng, full=True, extra=new)
    out.append(
        Scenario(
            "benign_novelty",
            "deploy-role-release-new-actions",
            tf,
            "Release of the infrastructure code adds an SQS queue: TerraformDeployRole creates it, "
            "and reads its attributes in every run afterwards.",
            [e for e in events if e.action in new],
            [e for e in events if e.action not in new],
        )
    )

    # A new hire: an IAM user signing in for the first time, who then keeps working.
    acct = accts[2 % len(accts)]
    name = "ravi.patel"
    actions = _actions(
        "signin:ConsoleLogin ec2:DescribeInstances s3:ListBuckets monitoring:DescribeAlarms "
        "logs:DescribeLogGroups lambda:ListFunctions20150331"
    )
    start = _live_time(world, 0.35, 9, 12, acct)
    hire = Principal(
        pid=f"{acct.account_id}/user/{name}",
        account=acct,
        kind="IAMUser",
        name=name,
        baseline_arn=f"arn:aws:iam::{acct.account_id}:user/{name}",
        unique_id=_unique_id(rng, "AIDA"),
        actions=actions,
        cum_weights=_weights(rng, len(actions)),
        style="run",
        pattern="business",
        rate=10.0,
        regions="home",
        sessions=[Session("", _ips(rng, "203.0.113", 1), UA_BROWSER, True)],
        active_from=start + HOUR,
        run_sample=3,
        run_gap=(2.0, 45.0),
    )
    world.principals.append(hire)
    s = _Script(world, hire, hire.sessions[0], start, rng)
    s.call("signin:ConsoleLogin", mfa="No")
    s.call("iam:ChangePassword", gap=(30, 90))
    s.call("iam:CreateVirtualMFADevice", req={"virtualMFADeviceName": name})
    s.call("iam:EnableMFADevice", gap=(30, 60), req={"userName": name})
    for a in actions[1:]:
        s.call(f"{a[0]}:{a[1]}", gap=(20, 120))
    out.append(
        Scenario(
            "new_hire",
            "new-hire-iam-user",
            hire,
            f"New IAM user {name}: first console sign-in, password change, MFA set-up, then the "
            "usual reads every working day.",
            s.events,
        )
    )

    # A new hire through Identity Center, with a permission set new to the account.
    acct = accts[3 % len(accts)]
    person = "sofia.moreau"
    ds_actions = _actions(
        "signin:ConsoleLogin sagemaker:ListDomains sagemaker:ListNotebookInstances "
        "athena:ListWorkGroups athena:StartQueryExecution athena:GetQueryExecution "
        "glue:GetDatabases glue:GetTables s3:ListBuckets"
    )
    role_name = _sso_role_name(rng, "DataScientist")
    ds = _human(rng, acct, role_name, _unique_id(rng, "AROA"), person, ds_actions, 6.0)
    ds.sessions = ds.sessions[:1]
    start = _live_time(world, 0.4, 10, 3, acct)
    ds.active_from = start + HOUR
    world.principals.append(ds)
    s = _Script(world, ds, ds.sessions[0], start, rng)
    for a in ds_actions:
        s.call(f"{a[0]}:{a[1]}", gap=(20, 150))
    out.append(
        Scenario(
            "new_hire",
            "new-hire-sso-permission-set",
            ds,
            f"{person}@{EMAIL_DOMAIN} joins and signs in through Identity Center with the "
            "DataScientist permission set, newly assigned in this account.",
            s.events,
        )
    )

    # A brand-new application, deployed mid-phase and running continuously afterwards.
    acct = accts[0]
    app = "invoice-exporter"
    app_actions = _actions(
        "s3:GetObject s3:PutObject kms:GenerateDataKey kms:Decrypt "
        "secretsmanager:GetSecretValue dynamodb:DescribeTable logs:CreateLogStream"
    )
    start = _live_time(world, 0.55, 11, 0, acct)
    ua = UA_BOTO_LAMBDA.format(v=rng.randrange(100, 160))
    role = _role(
        rng,
        acct,
        f"{app}-lambda-role",
        app_actions,
        [Session(app, (_aws_ip(rng),), ua)],
        style="run",
        pattern="app",
        rate=30.0,
    )
    role.run_sample, role.run_gap = 3, (0.0, 1.5)
    role.active_from = start + 30 * 60
    world.principals.append(role)
    s = _Script(world, role, role.sessions[0], start, rng)
    for a in app_actions:
        s.call(f"{a[0]}:{a[1]}", gap=(1, 20))
    out.append(
        Scenario(
            "benign_novelty",
            "new-application-role",
            role,
            f"New Lambda function {app} deployed with its own role; it runs continuously "
            "afterwards.",
            s.events,
        )
    )
    _root_housekeeping(world, out)
    _ci_writes_iam(world, out)
    return out


# ---------------------------------------------------------------------------------------------
# Rendering events as CloudTrail records.


def _akid(world: World, p: Principal, sess: Session, created: int) -> str:
    """The temporary access key id of a session's credentials issued at `created`."""
    key = (p.pid, sess.name, created)
    akid = world.akids.get(key)
    if akid is None:
        if len(world.akids) > 50_000:
            world.akids.clear()
        h = hashlib.blake2b(f"{world.seed}|{key}".encode(), digest_size=16).digest()
        akid = world.akids[key] = "ASIA" + "".join(KEY_ALPHABET[b % 32] for b in h)
    return akid


def _created(ts: int, p: Principal, sess: Session) -> int:
    """Temporary credentials are refreshed hourly, at a minute fixed per session."""
    off = (zlib.crc32(f"{p.pid}|{sess.name}".encode()) % 55) * 60
    return ts - ((ts - off) % HOUR)


def _identity(world: World, ev: Event, console_login: bool) -> JSON:
    """userIdentity; records of one session and credential share one (read-only) dict."""
    p, sess = ev.principal, ev.session
    if ev.ov and ev.ov.get("identity"):
        return _make_identity(world, ev, console_login)
    key = (p.pid, sess.name, _created(ev.ts, p, sess), console_login)
    ident = world.identities.get(key)
    if ident is None:
        if len(world.identities) > 20_000:
            world.identities.clear()
        ident = world.identities[key] = _make_identity(world, ev, console_login)
    return ident


def _make_identity(world: World, ev: Event, console_login: bool) -> JSON:
    p, sess = ev.principal, ev.session
    acct = p.account.account_id
    ov = ev.ov or {}
    if ov.get("identity") == "web" and p.web_identity:
        provider = f"arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com"
        return {
            "type": "WebIdentityUser",
            "principalId": f"{provider}:sts.amazonaws.com:{p.web_identity}",
            "userName": p.web_identity,
            "identityProvider": provider,
        }
    if p.kind == "AWSService":
        return {"type": "AWSService", "invokedBy": p.invoked_by}
    if p.kind == "ServiceEvent":
        return {"accountId": acct, "invokedBy": p.invoked_by}
    created = _created(ev.ts, p, sess)
    attributes = {"creationDate": _iso(created), "mfaAuthenticated": "true" if p.mfa else "false"}
    if p.kind == "AssumedRole":
        ident: JSON = {
            "type": "AssumedRole",
            "principalId": f"{p.unique_id}:{sess.name}",
            "arn": f"arn:aws:sts::{acct}:assumed-role/{p.name}/{sess.name}",
            "accountId": acct,
        }
        if not console_login:
            ident["accessKeyId"] = _akid(world, p, sess, created)
        context: JSON = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": p.unique_id,
                "arn": p.baseline_arn,
                "accountId": acct,
                "userName": p.name,
            },
            "webIdFederationData": {},
            "attributes": attributes,
        }
        if p.ec2_role:
            context["ec2RoleDelivery"] = "2.0"
        ident["sessionContext"] = context
        if p.invoked_by:
            ident["invokedBy"] = p.invoked_by
        return ident
    if p.kind == "IAMUser":
        ident = {
            "type": "IAMUser",
            "principalId": p.unique_id,
            "arn": p.baseline_arn,
            "accountId": acct,
        }
        if not console_login:
            ident["accessKeyId"] = _akid(world, p, sess, created) if sess.console else p.access_key
        ident["userName"] = p.name
        if sess.console and not console_login:
            ident["sessionContext"] = {
                "sessionIssuer": {},
                "webIdFederationData": {},
                "attributes": attributes,
            }
        return ident
    # Root
    ident = {
        "type": "Root",
        "principalId": acct,
        "arn": p.baseline_arn,
        "accountId": acct,
        "accessKeyId": "" if console_login else _akid(world, p, sess, created),
    }
    if not console_login:
        ident["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": attributes,
        }
    return ident


def _iam_action(action: Action) -> str:
    return f"{IAM_PREFIX.get(action[0], action[0])}:{API_VERSION_SUFFIX.sub('', action[1])}"


def _cli_command(action: Action) -> str:
    """`ec2.describe-instances`, as aws-cli names the command in its user agent."""
    return f"{action[0]}.{CAMEL_BOUNDARY.sub('-', API_VERSION_SUFFIX.sub('', action[1])).lower()}"


def _error(action: Action, kind: str, caller: str, resource: str) -> tuple[str, str]:
    svc = action[0]
    iam = _iam_action(action)
    if kind == "denied":
        msg = (
            f"User: {caller} is not authorized to perform: {iam} on resource: {resource} "
            f"because no identity-based policy allows the {iam} action"
        )
        if svc == "ec2":
            return (
                "Client.UnauthorizedOperation",
                f"You are not authorized to perform this operation. {msg}",
            )
        if svc == "s3":
            return "AccessDenied", "Access Denied"
        if svc in ("iam", "sts", "organizations", "cloudtrail"):
            return "AccessDenied", msg
        return "AccessDeniedException", msg
    if kind == "throttled":
        if svc == "ec2":
            return "Client.RequestLimitExceeded", "Request limit exceeded."
        return "ThrottlingException", "Rate exceeded"
    if svc == "iam":
        return "NoSuchEntityException", "The role with name deploy-preview cannot be found."
    if svc == "ec2":
        return "Client.InvalidInstanceID.NotFound", "The instance ID does not exist"
    return "ResourceNotFoundException", "Requested resource not found"


Details = tuple[JSON | None, JSON | None, list[JSON] | None, JSON | None]


def _details(world: World, ev: Event, rng: random.Random) -> Details:
    """requestParameters, responseElements, resources, additionalEventData of a call."""
    p = ev.principal
    acct = p.account
    a = acct.account_id
    svc, name = ev.action
    ov = ev.ov or {}
    region = ev.region
    if svc == "s3":
        bucket = acct.buckets[(ev.seq + len(name)) % len(acct.buckets)]
        host = f"{bucket}.s3.{region}.amazonaws.com"
        if name == "ListBuckets":
            return {"Host": "s3.amazonaws.com"}, None, None, None
        if (svc, name) in DATA_ACTIONS:
            key = (
                ov.get("key")
                or f"{p.name.split('-')[0]}/{_iso(ev.ts)[:10]}/{ev.seq % 9973:05d}.json"
            )
            resources = [
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                {"accountId": a, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
            ]
            size = 200 + (ev.seq * 7919) % 900_000
            extra = {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": size if name == "PutObject" else 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": base64.b64encode(rng.randbytes(42)).decode(),
                "bytesTransferredOut": size if name == "GetObject" else 0,
            }
            resp = {"x-amz-server-side-encryption": "aws:kms"} if name == "PutObject" else None
            return {"bucketName": bucket, "Host": host, "key": key}, resp, resources, extra
        sub = name[9:10].lower() + name[10:] if name.startswith(("GetBucket", "PutBucket")) else ""
        return {"bucketName": bucket, "Host": host, sub or "location": ""}, None, None, None
    if name == "AssumeRole":
        roles = acct.workload_roles.get(p.invoked_by or "") if p.kind == "AWSService" else None
        if roles:
            role_arn, sessions = roles[ev.seq % len(roles)]
            session = sessions[ev.seq % len(sessions)]
        else:
            role_arn = f"arn:aws:iam::{a}:role/partner-billing-export"
            session = f"billing-webhook-{ev.ts // HOUR}"
        creds = {
            "accessKeyId": "ASIA" + _rand_chars(rng, KEY_ALPHABET, 16),
            "expiration": _aws_date(ev.ts + HOUR),
        }
        return (
            {"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600},
            {
                "credentials": creds,
                "assumedRoleUser": {
                    "assumedRoleId": f"AROA{_rand_chars(rng, KEY_ALPHABET, 17)}:{session}",
                    "arn": f"arn:aws:sts::{a}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session}",
                },
            },
            [{"accountId": a, "type": "AWS::IAM::Role", "ARN": role_arn}],
            None,
        )
    if name == "AssumeRoleWithWebIdentity":
        creds = {
            "accessKeyId": "ASIA" + _rand_chars(rng, KEY_ALPHABET, 16),
            "expiration": _aws_date(ev.ts + HOUR),
        }
        provider = f"arn:aws:iam::{a}:oidc-provider/token.actions.githubusercontent.com"
        return (
            {
                "roleArn": p.baseline_arn,
                "roleSessionName": ev.session.name,
                "durationSeconds": 3600,
            },
            {
                "credentials": creds,
                "subjectFromWebIdentityToken": p.web_identity,
                "assumedRoleUser": {
                    "assumedRoleId": f"{p.unique_id}:{ev.session.name}",
                    "arn": f"arn:aws:sts::{a}:assumed-role/{p.name}/{ev.session.name}",
                },
                "provider": provider,
                "audience": "sts.amazonaws.com",
            },
            [{"accountId": a, "type": "AWS::IAM::Role", "ARN": p.baseline_arn}],
            None,
        )
    if svc == "kms" and name in ("Decrypt", "GenerateDataKey", "RotateKey"):
        key_id = acct.kms_keys[ev.seq % len(acct.kms_keys)]
        key_arn = f"arn:aws:kms:{region}:{a}:key/{key_id}"
        res = [{"accountId": a, "type": "AWS::KMS::Key", "ARN": key_arn}]
        if name == "RotateKey":
            return None, None, res, None
        req: JSON = {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if name == "GenerateDataKey":
            req = {"keyId": f"alias/{acct.name}-app", "keySpec": "AES_256"}
        return req, None, res, None
    if name == "GetSecretValue":
        return (
            {"secretId": ov.get("req", {}).get("secretId") or acct.secrets[ev.seq % 3]},
            None,
            None,
            None,
        )
    if name == "GetParameter":
        return {"name": acct.parameters[ev.seq % 3], "withDecryption": True}, None, None, None
    if name == "GetParameters" and not ov:
        return {"names": acct.parameters[:2], "withDecryption": True}, None, None, None
    if name == "UpdateInstanceInformation":
        ip = ev.session.ips[0]
        return (
            {
                "instanceId": ev.session.name,
                "agentVersion": "3.3.1142.0",
                "agentStatus": "Active",
                "platformType": "Linux",
                "platformName": "Amazon Linux",
                "platformVersion": "2023",
                "iPAddress": ip,
                "computerName": f"ip-{ip.replace('.', '-')}.ec2.internal",
                "agentName": "amazon-ssm-agent",
                "availabilityZone": f"{region}a",
            },
            None,
            None,
            None,
        )
    if name in ("GetMessages", "AcknowledgeMessage"):
        return (
            {
                "destination": ev.session.name,
                "messagesRequestId": _uuid(rng),
                "visibilityTimeoutInSeconds": 10,
            },
            None,
            None,
            None,
        )
    if name in ("DescribeInstances", "DescribeVolumes", "DescribeSnapshots"):
        return {"maxResults": 1000, "filterSet": {}}, None, None, None
    if name == "CreateSnapshot":
        vol = f"vol-0{_hex(rng, 16)}"
        snap = f"snap-0{_hex(rng, 16)}"
        return (
            {"volumeId": vol, "description": "nightly backup"},
            {
                "requestId": _uuid(rng),
                "snapshotId": snap,
                "volumeId": vol,
                "status": "pending",
                "startTime": ev.ts * 1000,
                "encrypted": True,
            },
            None,
            None,
        )
    if name in ("RotationStarted", "RotationSucceeded"):
        return (
            None,
            None,
            [
                {
                    "accountId": a,
                    "type": "AWS::SecretsManager::Secret",
                    "ARN": f"arn:aws:secretsmanager:{region}:{a}:secret:{acct.secrets[0]}-"
                    + _rand_chars(rng, ALNUM, 6),
                }
            ],
            None,
        )
    if name == "CreateUser":
        user = ov.get("req", {}).get("userName", "svc")
        return (
            ov.get("req"),
            {
                "user": {
                    "path": "/",
                    "userName": user,
                    "userId": _unique_id(rng, "AIDA"),
                    "arn": f"arn:aws:iam::{a}:user/{user}",
                    "createDate": _aws_date(ev.ts),
                }
            },
            None,
            None,
        )
    if name == "CreateAccessKey":
        user = (ov.get("req") or {}).get("userName") or p.name
        req_ak = ov.get("req")
        return (
            req_ak,
            {
                "accessKey": {
                    "userName": user,
                    "accessKeyId": "AKIA" + _rand_chars(rng, KEY_ALPHABET, 16),
                    "status": "Active",
                    "createDate": _aws_date(ev.ts),
                }
            },
            None,
            None,
        )
    if name == "CreateLoginProfile":
        req_lp = ov.get("req") or {}
        return (
            req_lp,
            {
                "loginProfile": {
                    "userName": req_lp.get("userName"),
                    "createDate": _aws_date(ev.ts),
                    "passwordResetRequired": False,
                }
            },
            None,
            None,
        )
    if name == "CreateQueue":
        return (
            {"queueName": f"{acct.name}-orders-events"},
            {"queueUrl": f"https://sqs.{region}.amazonaws.com/{a}/{acct.name}-orders-events"},
            None,
            None,
        )
    if name == "GetQueueAttributes":
        return (
            {
                "queueUrl": f"https://sqs.{region}.amazonaws.com/{a}/{acct.name}-orders-events",
                "attributeNames": ["All"],
            },
            None,
            None,
            None,
        )
    if name == "ModifySnapshotAttribute":
        return ov.get("req"), {"requestId": _uuid(rng), "_return": True}, None, None
    if name == "GetCostAndUsage":
        day = time.strftime("%Y-%m-01", time.gmtime(ev.ts))
        return (
            {
                "timePeriod": {"start": day, "end": time.strftime("%Y-%m-%d", time.gmtime(ev.ts))},
                "granularity": "MONTHLY",
                "metrics": ["UnblendedCost"],
            },
            None,
            None,
            None,
        )
    if name == "PutAlternateContact":
        return (
            {
                "alternateContactType": "BILLING",
                "emailAddress": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "name": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "phoneNumber": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "title": "HIDDEN_DUE_TO_SECURITY_REASONS",
            },
            None,
            None,
            None,
        )
    if name == "DescribeTable":
        return (
            {"tableName": f"{acct.name}-orders"},
            None,
            [
                {
                    "accountId": a,
                    "type": "AWS::DynamoDB::Table",
                    "ARN": f"arn:aws:dynamodb:{region}:{a}:table/{acct.name}-orders",
                }
            ],
            None,
        )
    if name == "CreateLogStream":
        group = f"/aws/lambda/{ev.session.name}"
        if ev.session.name.startswith("i-"):
            group = f"/ec2/{acct.name}/app-server"
        return (
            {
                "logGroupName": group,
                "logStreamName": f"{_iso(ev.ts)[:10].replace('-', '/')}/[$LATEST]{_hex(rng, 32)}",
            },
            None,
            None,
            None,
        )
    if name == "GetRole":
        return {"roleName": "TerraformDeployRole"}, None, None, None
    if "req" in ov:
        return ov["req"], None, None, None
    return None, None, None, None


def _tls_host(action: Action, region: str) -> str:
    svc = action[0]
    if _is_global(action):
        return "signin.aws.amazon.com" if svc == "signin" else f"{svc}.amazonaws.com"
    return f"{svc}.{region}.amazonaws.com"


def render(world: World, ev: Event, rng: random.Random) -> JSON:
    """One CloudTrail record, with the field names and order CloudTrail uses."""
    p, sess = ev.principal, ev.session
    svc, name = ev.action
    ov = ev.ov or {}
    source = _source(ev.action)
    console_login = name == "ConsoleLogin"
    service_event = p.kind == "ServiceEvent"
    is_data = ev.action in DATA_ACTIONS
    web = ov.get("identity") == "web"

    ip = ov.get("ip") or (sess.ips[0] if len(sess.ips) == 1 else rng.choice(sess.ips))
    ua = ov.get("ua") or sess.user_agent
    if "{cmd}" in ua:
        ua = ua.replace("{cmd}", _cli_command(ev.action))
    if web:
        ip = sess.ips[0] if len(sess.ips) == 1 else rng.choice(sess.ips)
        ua = "aws-sdk-nodejs/2.1692.0 linux/v20.16.0 configure-aws-credentials-for-github-actions"
    if sess.console and not console_login and not ov and rng.random() < 0.12:
        ip = ua = "AWS Internal"  # a call the console's backend makes for the user
    elif sess.console and not console_login:
        ua = rng.choice(("AWS Internal", "console.amazonaws.com", UA_BROWSER))

    ident = _identity(world, ev, console_login)
    rec: JSON = {
        "eventVersion": "1.08" if svc in EVENT_VERSION_108 or service_event else "1.09",
        "userIdentity": ident,
        "eventTime": _iso(ev.ts),
        "eventSource": source,
        "eventName": name,
        "awsRegion": ev.region,
        "sourceIPAddress": ip,
        "userAgent": ua,
    }
    error: tuple[str, str] | None = None
    err = ov.get("error")
    caller = ident.get("arn") or f"arn:aws:iam::{p.account.account_id}:root"
    resource_region = "" if _is_global(ev.action) else ev.region
    resource = f"arn:aws:{IAM_PREFIX.get(svc, svc)}:{resource_region}:{p.account.account_id}:*"
    if isinstance(err, tuple):
        error = (str(err[0]), str(err[1]))
    elif isinstance(err, str):
        error = _error(ev.action, err, caller, resource)
    elif not ov and p.kind not in ("AWSService", "ServiceEvent") and not console_login:
        r = rng.random()
        if r < 0.012:
            error = _error(ev.action, "denied", caller, resource)
        elif r < 0.02:
            error = _error(ev.action, "throttled", caller, resource)
        elif r < 0.025 and name.startswith(("Get", "Describe")):
            error = _error(ev.action, "notfound", caller, resource)
    if error:
        rec["errorCode"], rec["errorMessage"] = error

    req: JSON | None
    resp: JSON | None
    resources: list[JSON] | None
    extra: JSON | None
    if console_login:
        mfa = ov.get("mfa") or ("Yes" if p.mfa else "No")
        req, resp, resources = None, {"ConsoleLogin": "Success"}, None
        extra = {"LoginTo": CONSOLE_LOGIN_TO, "MobileVersion": "No", "MFAUsed": mfa}
    else:
        req, resp, resources, extra = _details(world, ev, rng)
    if error:
        resp = None
    rec["requestParameters"] = req
    rec["responseElements"] = resp
    if extra:
        rec["additionalEventData"] = extra
    if not (service_event or console_login):
        rec["requestID"] = _hex(rng, 16).upper() if svc == "s3" else _uuid(rng)
    rec["eventID"] = _uuid(rng)
    rec["readOnly"] = False if console_login else _is_read(ev.action)
    if resources:
        rec["resources"] = resources
    rec["eventType"] = (
        "AwsServiceEvent"
        if service_event
        else "AwsConsoleSignIn"
        if console_login
        else "AwsApiCall"
    )
    rec["managementEvent"] = not is_data
    rec["recipientAccountId"] = p.account.account_id
    if p.kind == "AWSService" and name == "AssumeRole":
        rec["sharedEventID"] = _uuid(rng)
    if sess.vpce and not ov:
        rec["vpcEndpointId"] = sess.vpce
    if service_event:
        rec["serviceEventDetails"] = (
            {"keyId": resources[0]["ARN"].rsplit("/", 1)[-1]} if resources and svc == "kms" else {}
        )
    rec["eventCategory"] = "Data" if is_data else "Management"
    if not (service_event or p.kind == "AWSService" or p.invoked_by) and (
        ov or rng.random() < 0.85
    ):
        tls13 = rng.random() < 0.8
        rec["tlsDetails"] = {
            "tlsVersion": "TLSv1.3" if tls13 else "TLSv1.2",
            "cipherSuite": "TLS_AES_128_GCM_SHA256" if tls13 else "ECDHE-RSA-AES128-GCM-SHA256",
            "clientProvidedHostHeader": _tls_host(ev.action, ev.region),
        }
    if sess.console and not console_login:
        rec["sessionCredentialFromConsole"] = "true"
    return rec


# ---------------------------------------------------------------------------------------------
# Writing delivery objects.


def _make_dumps() -> Callable[[Any], bytes]:
    try:
        import orjson
    except ImportError:
        encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
        return lambda obj: encoder.encode(obj).encode()
    dumps: Callable[[Any], bytes] = orjson.dumps
    return dumps


dumps = _make_dumps()


@dataclass(slots=True)
class Stats:
    files: int = 0
    records: int = 0
    raw_bytes: int = 0
    gz_bytes: int = 0


class TrailWriter:
    """Groups events into per account/region/5-minute delivery objects and writes them."""

    def __init__(self, world: World, out: Path) -> None:
        self.world = world
        self.out = out
        self.buckets: dict[tuple[int, int, str], list[Event]] = {}
        self.stats = Stats()
        self._dirs: set[str] = set()

    def add(self, ev: Event, rng: random.Random) -> None:
        # Most records reach the file of their slot; a few are delivered in the next one.
        lag = 0 if rng.random() < 0.88 else rng.randint(1, 150)
        slot = (ev.ts + lag - self.world.t0) // SLOT
        key = (slot, ev.principal.account.idx, ev.region)
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = [ev]
        else:
            bucket.append(ev)

    def flush(self, before_slot: int | None, rng: random.Random) -> None:
        """Write every delivery object of a slot before `before_slot` (None: all of them)."""
        ready = sorted(k for k in self.buckets if before_slot is None or k[0] < before_slot)
        for key in ready:
            self._write(key, self.buckets.pop(key), rng)

    def _write(self, key: tuple[int, int, str], events: list[Event], rng: random.Random) -> None:
        slot, idx, region = key
        w = self.world
        slot_end = w.t0 + (slot + 1) * SLOT
        if slot_end > w.t_end:
            return
        events.sort(key=lambda e: (e.ts, e.seq))
        for i in range(len(events) - 1):  # files are only roughly in time order
            if rng.random() < 0.04:
                events[i], events[i + 1] = events[i + 1], events[i]
        acct = w.accounts[idx].account_id
        stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(slot_end))
        day = time.strftime("%Y/%m/%d", time.gmtime(slot_end))
        phase = "history" if slot_end <= w.live_start else "live"
        folder = f"{self.out}/{phase}/AWSLogs/{w.org_id}/{acct}/CloudTrail/{region}/{day}"
        if folder not in self._dirs:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder)
        uid = _rand_chars(rng, ALNUM, 16)
        name = f"{acct}_CloudTrail_{region}_{stamp}_{uid}.json.gz"
        raw = dumps({"Records": [render(w, ev, rng) for ev in events]})
        data = gzip.compress(raw, compresslevel=6, mtime=0)
        with open(f"{folder}/{name}", "wb") as f:
            f.write(data)
        self.stats.files += 1
        self.stats.records += len(events)
        self.stats.raw_bytes += len(raw)
        self.stats.gz_bytes += len(data)


def generate_trail(args: argparse.Namespace) -> tuple[Stats, list[JSON]]:
    world = build_world(args)
    scenarios = build_scenarios(world)
    scheduled: dict[int, list[Event]] = {}
    injected = [e for sc in scenarios for e in sc.events + sc.context]
    for ev in coverage_events(world, args.history_days) + injected:
        scheduled.setdefault((ev.ts - world.t0) // HOUR, []).append(ev)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    writer = TrailWriter(world, out)
    hours = (world.t_end - world.t0) // HOUR
    for h in range(hours):
        rng = random.Random(f"{world.seed}:hour:{h}")
        hour_start = world.t0 + h * HOUR
        for ev in generate_hour(world, hour_start, rng) + scheduled.pop(h, []):
            writer.add(ev, rng)
        writer.flush(h * SLOTS_PER_HOUR, rng)
    writer.flush(None, random.Random(f"{world.seed}:tail"))

    docs = [sc.to_json() for sc in scenarios]
    (out / "scenarios.json").write_text(json.dumps(docs, indent=2) + "\n")
    return writer.stats, docs


def write_single_file(args: argparse.Namespace) -> Stats:
    """Stream one delivery object of about `--target-mb` MB, uncompressed."""
    world = build_world(args)
    target = int(args.target_mb * 1_000_000)
    path = Path(args.single_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = Stats(files=1)
    head, sep, tail = b'{"Records":[', b",", b"]}"
    written = len(head) + len(tail)
    with (
        path.open("wb") as raw_file,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw_file, mtime=0, compresslevel=6) as gz,
    ):
        _write_records(world, gz, target, written, head, sep, stats)
        gz.write(tail)
    stats.gz_bytes = path.stat().st_size
    return stats


def _write_records(
    world: World,
    gz: gzip.GzipFile,
    target: int,
    written: int,
    head: bytes,
    sep: bytes,
    stats: Stats,
) -> None:
    gz.write(head)
    h = 0
    while True:
        rng = random.Random(f"{world.seed}:single:{h}")
        evs = generate_hour(world, world.t0 + h * HOUR, rng)
        evs.sort(key=lambda e: (e.ts, e.seq))
        for ev in evs:
            rec = dumps(render(world, ev, rng))
            extra = len(rec) + (len(sep) if stats.records else 0)
            if written + extra > target and stats.records:
                stats.raw_bytes = written
                return
            if stats.records:
                gz.write(sep)
            gz.write(rec)
            written += extra
            stats.records += 1
        h += 1


# ---------------------------------------------------------------------------------------------
# Command line.


def _regions(text: str) -> list[str]:
    regions = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in regions if not REGION_RE.match(r)]
    if not regions or bad:
        raise argparse.ArgumentTypeError(f"bad region list {text!r}")
    return list(dict.fromkeys(regions))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Generate a deterministic synthetic AWS organization CloudTrail trail."
    )
    target = ap.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="directory for history/, live/ and scenarios.json")
    target.add_argument("--single-file", help="write one gzipped delivery object to this path")
    ap.add_argument(
        "--target-mb",
        type=_positive_float,
        default=80.0,
        help="uncompressed size of --single-file, in MB of 10**6 bytes (default 80)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--accounts", type=_positive_int, default=4)
    ap.add_argument("--regions", type=_regions, default=["us-east-1", "eu-west-1", "us-west-2"])
    ap.add_argument("--history-days", type=_positive_int, default=28)
    ap.add_argument("--live-days", type=_positive_int, default=7)
    ap.add_argument(
        "--scale",
        type=_positive_float,
        default=1.0,
        help="multiplies the event volume (default 1.0, about 120k records)",
    )
    ap.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2026, 10, 1),
        help="first day of the history, UTC (default 2026-10-01)",
    )
    return ap.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()  # only for the summary line; the output never sees a clock
    if args.single_file:
        stats = write_single_file(args)
        where = args.single_file
        note = ""
    else:
        stats, docs = generate_trail(args)
        where = args.out
        note = f", {len(docs)} scenarios"
    print(
        f"generate_sample: {stats.files} files, {stats.records} records, "
        f"{stats.gz_bytes} bytes gzipped ({stats.raw_bytes} uncompressed) in {where}{note}, "
        f"{time.perf_counter() - began:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

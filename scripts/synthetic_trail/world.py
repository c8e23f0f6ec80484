"""The organization: its time frame, accounts, and the steady population of principals (roles,
IAM users, people through Identity Center, monitoring and AWS services) with their sessions."""

from __future__ import annotations

import argparse
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from synthetic_trail.actions import Action, parse_actions
from synthetic_trail.clock import DAY
from synthetic_trail.draws import (
    KEY_ALPHABET,
    addresses,
    aws_ip,
    cumulative_weights,
    hex_digits,
    new_unique_id,
    rand_chars,
    uuid4,
)
from synthetic_trail.profiles import (
    ACCOUNT_NAMES,
    APP_PROFILES,
    AUTOSCALING_SLR,
    CONFIG_SLR,
    DATADOG,
    EMAIL_DOMAIN,
    GITHUB_DEPLOY,
    IAM_USER_PROFILES,
    INSTANCE_ROLE,
    PEOPLE,
    PROWLER,
    ROOT_BILLING,
    SSO_ROLE_POOLS,
    TERRAFORM,
    UA_BOTO_LAMBDA,
    UA_BOTO_SERVER,
    UA_BROWSER,
    UA_CLI,
    UA_CLI_LINUX,
    UA_DATADOG,
    UA_GO_ECS,
    UA_PROWLER,
    UA_SSM_AGENT,
    UA_TERRAFORM,
)

JSON = dict[str, Any]


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


def build_world(args: argparse.Namespace) -> World:
    rng = random.Random(f"{args.seed}:world")
    regions: list[str] = args.regions
    global_region = "us-east-1" if "us-east-1" in regions else regions[0]
    t0 = int(datetime.combine(args.start, datetime.min.time(), UTC).timestamp())
    live_start = t0 + args.history_days * DAY
    t_end = live_start + args.live_days * DAY
    org_id = "o-" + rand_chars(rng, string.ascii_lowercase + string.digits, 10)
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
                kms_keys=[uuid4(rng) for _ in range(3)],
                secrets=[f"{name}/{s}" for s in ("orders/db", "stripe/api-key", "smtp")],
                parameters=[f"/{name}/{p}" for p in ("orders/api-url", "feature-flags", "db")],
                instance_ids=[f"i-0{hex_digits(rng, 16)}" for _ in range(rng.randint(2, 4))],
                snapshot_ids=[f"snap-0{hex_digits(rng, 16)}" for _ in range(4)],
                nat_ips=[aws_ip(rng) for _ in range(2)],
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
    root_history_account = 0 if scenario_accounts(len(accounts))["root"] != 0 else None
    for acct in accounts:
        world.principals.extend(_population(rng, world, acct, people))
        if acct.idx == root_history_account:
            world.principals.append(root_principal(rng, acct, pattern="business", rate=0.15))
    return world


def scenario_accounts(n: int) -> dict[str, int]:
    """Which account each attack lands in: four different ones when there are four."""
    return {"leaked_key": 0, "instance": 1 % n, "evasion": 2 % n, "root": 3 % n, "spree": 4 % n}


def role_principal(
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
        unique_id=new_unique_id(rng, "AROA"),
        actions=list(actions),
        cum_weights=cumulative_weights(rng, len(actions)),
        style=style,
        pattern=pattern,
        rate=rate,
        regions=regions,
        sessions=sessions,
        invoked_by=invoked_by,
    )


def root_principal(rng: random.Random, acct: Account, *, pattern: str, rate: float) -> Principal:
    return Principal(
        pid=f"{acct.account_id}/root",
        account=acct,
        kind="Root",
        name="root",
        baseline_arn=f"arn:aws:iam::{acct.account_id}:root",
        unique_id=acct.account_id,
        actions=list(ROOT_BILLING),
        cum_weights=cumulative_weights(rng, len(ROOT_BILLING)),
        style="run",
        pattern=pattern,
        rate=rate,
        regions="home",
        sessions=[Session("", addresses(rng, "203.0.113", 1), UA_BROWSER, console=True)],
        mfa=True,
        scaled=False,
    )


def sso_role_name(rng: random.Random, permission_set: str) -> str:
    return f"AWSReservedSSO_{permission_set}_{hex_digits(rng, 16)}"


def sso_principal(
    rng: random.Random,
    acct: Account,
    role_name: str,
    role_id: str,
    person: str,
    actions: list[Action],
    rate: float,
) -> Principal:
    email = f"{person}@{EMAIL_DOMAIN}"
    office = addresses(rng, "203.0.113", 1) + addresses(rng, "198.51.100", 1)
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
        cum_weights=cumulative_weights(rng, len(actions)),
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
    tf = role_principal(
        rng,
        acct,
        "TerraformDeployRole",
        TERRAFORM,
        [Session(f"terraform-{hex_digits(rng, 8)}", nat, tf_ua)],
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
    gh = role_principal(
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
            sessions = [Session(app, (aws_ip(rng), aws_ip(rng)), ua)]
        else:
            ua = UA_GO_ECS.format(v=rng.randrange(10, 40), svc="secretsmanager")
            vpce = f"vpce-0{hex_digits(rng, 16)}"
            sessions = [
                Session(
                    hex_digits(rng, 32),
                    (f"10.20.{rng.randrange(256)}.{rng.randrange(2, 254)}",),
                    ua,
                    vpce=vpce,
                )
                for _ in range(3)
            ]
        p = role_principal(
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
        role_principal(
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
            unique_id=new_unique_id(rng, "AIDA"),
            actions=list(user_actions),
            cum_weights=cumulative_weights(rng, len(user_actions)),
            style="run",
            pattern="nightly",
            rate=1.0,
            regions="home",
            sessions=[Session("", (nat[0],), UA_BOTO_SERVER.format(v=rng.randrange(10, 90)))],
            access_key="AKIA" + rand_chars(rng, KEY_ALPHABET, 16),
            run_writes=3,
        )
    )

    # People through IAM Identity Center.
    role_ids: dict[str, tuple[str, str]] = {}
    for ps in SSO_ROLE_POOLS:
        role_ids[ps] = (sso_role_name(rng, ps), new_unique_id(rng, "AROA"))
    for person in rng.sample(people, rng.randint(3, 6)):
        ps = rng.choice(list(SSO_ROLE_POOLS))
        pool = SSO_ROLE_POOLS[ps]
        k = max(6, int(len(pool) * rng.uniform(0.5, 0.85)))
        actions = [pool[0], *rng.sample(pool[1:], k - 1)]
        role_name, role_id = role_ids[ps]
        out.append(
            sso_principal(rng, acct, role_name, role_id, person, actions, rng.uniform(6, 15))
        )

    # Monitoring: a Datadog integration polling every region, a nightly prowler scan.
    out.append(
        role_principal(
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
        role_principal(
            rng,
            acct,
            "SecurityAuditRole",
            PROWLER,
            [
                Session(
                    f"prowler-{hex_digits(rng, 8)}",
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
        role_principal(
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
        role_principal(
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
        ("lambda.amazonaws.com", parse_actions("sts:AssumeRole"), 1.5, "AWSService"),
        ("ecs-tasks.amazonaws.com", parse_actions("sts:AssumeRole"), 1.0, "AWSService"),
        ("ec2.amazonaws.com", parse_actions("sts:AssumeRole"), 0.8, "AWSService"),
        ("config.amazonaws.com", parse_actions("s3:GetBucketAcl"), 0.5, "AWSService"),
        ("kms.amazonaws.com", parse_actions("kms:RotateKey"), 0.03, "ServiceEvent"),
        (
            "secretsmanager.amazonaws.com",
            parse_actions("secretsmanager:RotationStarted secretsmanager:RotationSucceeded"),
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
                parse_actions("s3:GetBucketAcl"),
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
        cum_weights=cumulative_weights(rng, len(actions)),
        style="poisson",
        pattern="flat",
        rate=rate,
        regions="home",
        sessions=[Session("", (ip,), ip)],
        invoked_by=service if kind == "AWSService" else "AWS Internal",
    )

"""What the live phase injects: attacks modelled on Stratus Red Team techniques and benign
novelty (people trying a service, releases, new hires, a new application), with the ground
truth each writes to scenarios.json."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthetic_trail.actions import Action, action_key, parse_actions
from synthetic_trail.clock import DAY, HOUR, SLOT, iso
from synthetic_trail.draws import addresses, aws_ip, cumulative_weights, hex_digits, new_unique_id
from synthetic_trail.profiles import (
    ATTACKER_IPS,
    EMAIL_DOMAIN,
    EXPLORATION,
    SLOW_RECON_IP,
    UA_ATTACKER_BOTO,
    UA_ATTACKER_CLI,
    UA_BOTO_LAMBDA,
    UA_BROWSER,
)
from synthetic_trail.traffic import region_for, run
from synthetic_trail.world import (
    JSON,
    Account,
    Event,
    Principal,
    Session,
    World,
    role_principal,
    root_principal,
    scenario_accounts,
    sso_principal,
    sso_role_name,
)


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
            "start": iso(min(e.ts for e in self.events)),
            "end": iso(max(e.ts for e in self.events)),
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
        reg = region or region_for(self.world, self.p, action, self.rng)
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
    where = scenario_accounts(len(accts))
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
    s.call(
        "guardduty:DeleteDetector", region=acct.home_region, req={"detectorId": hex_digits(rng, 32)}
    )
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
    root = root_principal(rng, acct, pattern="business", rate=0.0)
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
        unique_id=new_unique_id(rng, "AIDA"),
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
    new = parse_actions(
        "iam:CreateRole iam:AttachRolePolicy iam:CreateInstanceProfile "
        "iam:AddRoleToInstanceProfile iam:GetInstanceProfile"
    )
    tf.late_actions.append((t + HOUR, ("iam", "GetInstanceProfile")))
    events = run(world, tf, t, rng, full=True, extra=new)
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
    events = run(world, tf, t, rng, full=True, extra=new)
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
    actions = parse_actions(
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
        unique_id=new_unique_id(rng, "AIDA"),
        actions=actions,
        cum_weights=cumulative_weights(rng, len(actions)),
        style="run",
        pattern="business",
        rate=10.0,
        regions="home",
        sessions=[Session("", addresses(rng, "203.0.113", 1), UA_BROWSER, True)],
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
    ds_actions = parse_actions(
        "signin:ConsoleLogin sagemaker:ListDomains sagemaker:ListNotebookInstances "
        "athena:ListWorkGroups athena:StartQueryExecution athena:GetQueryExecution "
        "glue:GetDatabases glue:GetTables s3:ListBuckets"
    )
    role_name = sso_role_name(rng, "DataScientist")
    ds = sso_principal(rng, acct, role_name, new_unique_id(rng, "AROA"), person, ds_actions, 6.0)
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
    app_actions = parse_actions(
        "s3:GetObject s3:PutObject kms:GenerateDataKey kms:Decrypt "
        "secretsmanager:GetSecretValue dynamodb:DescribeTable logs:CreateLogStream"
    )
    start = _live_time(world, 0.55, 11, 0, acct)
    ua = UA_BOTO_LAMBDA.format(v=rng.randrange(100, 160))
    role = role_principal(
        rng,
        acct,
        f"{app}-lambda-role",
        app_actions,
        [Session(app, (aws_ip(rng),), ua)],
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

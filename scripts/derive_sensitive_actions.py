#!/usr/bin/env python3
"""Show where the curated sensitive-action list (`cloudtrail_anomaly/domain/sensitive.py`) comes from.

Candidates are the actions that public attack data ties to intrusion set-up:
- TrailDiscover (adanalvarez/TrailDiscover, CC BY 4.0) `labels.jsonl`: every event whose MITRE
  ATT&CK tactics include Persistence, Privilege Escalation, Defense Evasion, Credential Access
  or Exfiltration (the tactics issue 3 names; Discovery, Impact and the rest are left out);
- Stratus Red Team (DataDog/stratus-red-team, Apache-2.0) `labels.tsv`: every action in the
  detonation log of every technique (the technique's tactic is in its name).

For each tactic the script prints every candidate as LISTED (in sensitive.py, with its least
severity), PRUNED (with the reason from PRUNED below) or GAP (neither: a decision to make), then
the listed actions that neither source names (curated additions), and CONFLICT for a listed
action that a prune pattern also matches. `--check` exits 1 on any GAP or CONFLICT.

    .venv/bin/python scripts/derive_sensitive_actions.py [TRAILDISCOVER_JSONL] [STRATUS_TSV]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from cloudtrail_anomaly.domain.events import normalize_action
from cloudtrail_anomaly.domain.sensitive import default_sensitive_actions, expand_action

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "cloudtrail"
FIXTURES = ROOT / "tests" / "fixtures" / "cloudtrail"

# TrailDiscover tactic → the tactic names sensitive.py uses. Only these make candidates.
TRAILDISCOVER_TACTICS = {
    "TA0003 - Persistence": "persistence",
    "TA0004 - Privilege Escalation": "privilege-escalation",
    "TA0005 - Defense Evasion": "defense-evasion",
    "TA0006 - Credential Access": "credential-access",
    "TA0010 - Exfiltration": "exfiltration",
}

# Candidates deliberately left out of the list: (short-name globs, the one reason). A new
# action alerts anyway; "sensitive" means one new call is worth a high alert by itself, so an
# action that ordinary work does for the first time every week would drown the signal.
PRUNED: list[tuple[tuple[str, ...], str]] = [
    (
        ("*:Describe*", "*:List*", "sts:GetCallerIdentity", "lambda:GetFunctionConfiguration"),
        "read-only metadata: consoles and SDKs call it all day; the value-revealing reads "
        "(GetSecretValue, GetParameters, GetPasswordData) are listed",
    ),
    (
        ("sts:AssumeRole", "signin:ConsoleLogin", "logs:CreateLogStream"),
        "how every session starts or logs: new principals are covered by learning, root by "
        "its own rule",
    ),
    (
        (
            "ec2:RunInstances",
            "ec2:StartInstances",
            "ec2:StopInstances",
            "ec2:TerminateInstances",
            "lightsail:CreateInstances",
        ),
        "compute lifecycle: every deploy and autoscaler does it; the dangerous variant "
        "(ModifyInstanceAttribute user data, instance profile swap) is listed",
    ),
    (
        ("iam:CreateRole", "iam:CreateGroup", "iam:CreatePolicy", "sso-directory:CreateGroup"),
        "creating an identity or policy grants nothing yet; the granting steps (Attach*/Put*"
        "Policy, UpdateAssumeRolePolicy, AddUserToGroup, AddMemberToGroup) are listed",
    ),
    (
        ("iam:PassRole",),
        "not an API call: a permission checked inside RunInstances, CreateFunction..., so "
        "CloudTrail never logs it as an event",
    ),
    (
        ("iam:CreateServiceLinkedRole",),
        "AWS creates service-linked roles itself on a service's first use",
    ),
    (
        (
            "iam:DeleteAccessKey",
            "iam:DeleteLoginProfile",
            "iam:DeleteUser",
            "iam:DeleteUserPolicy",
            "iam:DeleteRolePolicy",
            "iam:Detach*",
            "iam:ChangePassword",
            "ses:DeleteIdentity",
        ),
        "removing access or changing one's own password is hygiene; an attacker's clean-up "
        "follows a grant that already alerted",
    ),
    (
        ("ec2:CreateSnapshot", "ec2:CreateImage", "rds:CreateDBSnapshot"),
        "backups make these daily; the exfiltration step, sharing (Modify*SnapshotAttribute, "
        "ModifyImageAttribute), is listed",
    ),
    (
        (
            "ec2:CreateSecurityGroup",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:CreateNetworkAclEntry",
            "ec2:DeleteNetworkAcl*",
            "ec2:CreateDefaultVpc",
            "wafv2:UpdateIPSet",
            "elasticloadbalancing:CreateRule",
        ),
        "network plumbing that infrastructure-as-code changes with every release; the "
        "exposing change, AuthorizeSecurityGroupIngress, is listed",
    ),
    (
        ("rds:CreateDBSecurityGroup", "rds:AuthorizeDBSecurityGroupIngress"),
        "DB security groups belong to EC2-Classic, retired in 2022",
    ),
    (
        (
            "lambda:CreateFunction",
            "lambda:*EventSourceMapping",
            "apigateway:Create*",
            "appsync:UpdateResolver",
        ),
        "application development; the backdoor steps (UpdateFunctionCode, AddPermission, "
        "CreateFunctionUrlConfig) are listed",
    ),
    (
        ("s3:PutBucketVersioning",),
        "the same call turns versioning on, a routine hardening step; suspension cannot be "
        "told apart by name",
    ),
    (
        ("ssm:GetCommandInvocation", "ssm:TerminateSession"),
        "follow-ups of SendCommand and StartSession, which are listed",
    ),
    (
        (
            "bedrock:*",
            "agreement-marketplace:AcceptAgreementRequest",
            "support:CreateCase",
            "ses:PutAccountDetails",
            "sso:UpdateSsoConfiguration",
        ),
        "account and service set-up done once by admins (model access, Marketplace, support, "
        "SES production access); abuse of it is Impact, not intrusion set-up: add it with "
        "[policy] sensitive_actions_add where the service is unused",
    ),
]


@dataclass
class Candidate:
    action: str  # full name, eventSource:eventName
    tactics: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, tactic: str, source: str) -> None:
        if tactic not in self.tactics:
            self.tactics.append(tactic)
        if source not in self.sources:
            self.sources.append(source)


def short(action: str) -> str:
    return action.replace(".amazonaws.com:", ":", 1)


def default_path(name: str) -> Path:
    shared = SHARED / name
    return shared if shared.exists() else FIXTURES / name


def read_traildiscover(path: Path, out: dict[str, Candidate]) -> int:
    """Add TrailDiscover candidates; return how many labelled events lacked an action."""
    unusable = 0
    with path.open() as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            source, name = row.get("eventSource"), row.get("eventName")
            if not isinstance(source, str) or not isinstance(name, str):
                unusable += 1
                continue
            for tactic in row.get("mitreAttackTactics") or []:
                ours = TRAILDISCOVER_TACTICS.get(tactic)
                if ours:
                    action = normalize_action(source, name)
                    out.setdefault(action, Candidate(action)).add(ours, "TrailDiscover")
    return unusable


def read_stratus(path: Path, out: dict[str, Candidate]) -> None:
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            technique = row["technique"]
            tactic = technique.split(".")[1]  # aws.<tactic>.<name>
            for item in row["eventSource:eventName"].split(","):
                source, _, name = item.strip().partition(":")
                if source and name:
                    action = normalize_action(source, name)
                    out.setdefault(action, Candidate(action)).add(tactic, f"Stratus:{technique}")


def prune_reason(action: str) -> str | None:
    for patterns, reason in PRUNED:
        if any(fnmatchcase(action, expand_action(p)) for p in patterns):
            return reason
    return None


def report(candidates: dict[str, Candidate], out: list[str]) -> int:
    """Append the report lines; return the number of GAPs and CONFLICTs."""
    listed = default_sensitive_actions()
    problems = 0
    by_tactic: dict[str, list[Candidate]] = defaultdict(list)
    for cand in candidates.values():
        by_tactic[cand.tactics[0]].append(cand)
    totals = {"LISTED": 0, "PRUNED": 0, "GAP": 0}
    for tactic in sorted(by_tactic):
        out.append(f"\n== {tactic}")
        for cand in sorted(by_tactic[tactic], key=lambda c: c.action):
            hit, reason = listed.get(cand.action), prune_reason(cand.action)
            origin = ", ".join(cand.sources[:3]) + (" ..." if len(cand.sources) > 3 else "")
            if hit is not None:
                totals["LISTED"] += 1
                out.append(f"  LISTED  {short(cand.action):50} {hit.severity:8} [{origin}]")
                if reason:
                    problems += 1
                    out.append(f"  CONFLICT  {short(cand.action)} is also pruned: {reason}")
            elif reason:
                totals["PRUNED"] += 1
                out.append(f"  PRUNED  {short(cand.action):50} {reason}")
            else:
                totals["GAP"] += 1
                problems += 1
                out.append(f"  GAP     {short(cand.action):50} [{origin}]")
    extra = sorted(a for a in listed if a not in candidates)
    out.append(f"\n== listed, named by neither source (curated additions): {len(extra)}")
    for action in extra:
        hit = listed[action]
        out.append(f"  ADDED   {short(action):50} {hit.severity:8} {hit.tactic}")
        if prune_reason(action):
            problems += 1
            out.append(f"  CONFLICT  {short(action)} is also pruned")
    unused = [
        (p, reason)
        for patterns, reason in PRUNED
        for p in patterns
        if not any(fnmatchcase(a, expand_action(p)) for a in candidates)
    ]
    if unused:
        out.append("\n== pruned by name, though neither source names it")
        out.extend(f"  PRUNED  {p:50} {reason}" for p, reason in unused)
    out.append(
        f"\ncandidates: {len(candidates)}  listed: {totals['LISTED']}  pruned: "
        f"{totals['PRUNED']}  gaps: {totals['GAP']}  curated additions: {len(extra)}  "
        f"list size: {len(listed)}"
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "traildiscover",
        nargs="?",
        type=Path,
        default=default_path("traildiscover/labels.jsonl"),
        help="TrailDiscover labels.jsonl (default: %(default)s)",
    )
    parser.add_argument(
        "stratus",
        nargs="?",
        type=Path,
        default=default_path("stratus-red-team/labels.tsv"),
        help="Stratus Red Team labels.tsv (default: %(default)s)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on any GAP or CONFLICT")
    args = parser.parse_args(argv)
    candidates: dict[str, Candidate] = {}
    unusable = read_traildiscover(args.traildiscover, candidates)
    read_stratus(args.stratus, candidates)
    lines = [
        f"sources: {args.traildiscover} ({unusable} labelled events without an action skipped)",
        f"         {args.stratus}",
    ]
    problems = report(candidates, lines)
    print("\n".join(lines))
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())

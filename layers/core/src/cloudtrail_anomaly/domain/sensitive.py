"""The curated list of sensitive actions: one new sensitive action is worth an analyst's look
whatever else happened.

Derived from the MITRE ATT&CK mappings of TrailDiscover (adanalvarez/TrailDiscover, CC BY 4.0:
its events labelled Persistence, Privilege Escalation, Defense Evasion, Credential Access and
Exfiltration) and from the techniques Stratus Red Team detonates (DataDog/stratus-red-team),
then pruned of everyday calls that would drown the signal (sts:AssumeRole, ec2:RunInstances,
ec2:StartInstances, logs:CreateLogStream, kms:Decrypt, ssm:GetParameter...). `scripts/derive_sensitive_actions.py` prints the
raw candidates from the labels and what this list keeps or drops; docs/alert-policy.md explains
the choices. Users extend or trim it in the config (`[policy] sensitive_actions_add/remove`).

Names are short (`iam:CreateAccessKey` means `iam.amazonaws.com:CreateAccessKey`); the
severity is the least an alert containing the action gets.
"""

from __future__ import annotations

from typing import NamedTuple


class SensitiveAction(NamedTuple):
    tactic: str
    severity: str


_P, _PE, _DE, _CA, _EX, _IA = (
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "exfiltration",
    "initial-access",
)

_HIGH: dict[str, tuple[str, ...]] = {
    _P: (
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
        "iam:CreateUser",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateSAMLProvider",
        "iam:CreateSAMLProvider",
        "iam:CreateOpenIDConnectProvider",
        "iam:UpdateAccessKey",
        "sts:GetFederationToken",
        "lambda:AddPermission",
        "lambda:UpdateFunctionCode",
        "lambda:CreateFunctionUrlConfig",
        "lambda:UpdateFunctionConfiguration",
        "lambda:AddLayerVersionPermission",
        "rolesanywhere:CreateTrustAnchor",
        "rolesanywhere:CreateProfile",
        "sso:CreateAccountAssignment",
        "sso-directory:CreateUser",
        "sso-directory:AddMemberToGroup",
        "ec2:CreateKeyPair",
        "ec2:ImportKeyPair",
        "appsync:CreateApiKey",
    ),
    _PE: (
        "iam:AttachUserPolicy",
        "iam:AttachRolePolicy",
        "iam:AttachGroupPolicy",
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
        "iam:PutGroupPolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:AddUserToGroup",
        "iam:AddRoleToInstanceProfile",
        "iam:DeleteRolePermissionsBoundary",
        "iam:DeleteUserPermissionsBoundary",
        "iam:PutRolePermissionsBoundary",  # swapping in a looser boundary escalates too
        "iam:PutUserPermissionsBoundary",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:ModifyInstanceAttribute",
        "eks:CreateAccessEntry",
        "eks:AssociateAccessPolicy",
        "glue:CreateDevEndpoint",
        "glue:UpdateDevEndpoint",
    ),
    _DE: (
        "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:PutInsightSelectors",
        "config:DeleteConfigurationRecorder",
        "config:DeleteDeliveryChannel",
        "config:DeleteConfigRule",
        "guardduty:UpdateDetector",
        "guardduty:DeleteMembers",
        "guardduty:DisassociateMembers",
        "guardduty:StopMonitoringMembers",
        "guardduty:CreateIPSet",
        "guardduty:UpdateIPSet",
        "guardduty:DeletePublishingDestination",
        "guardduty:DeleteInvitations",
        "rds:ModifyActivityStream",  # stops a database activity stream
        "securityhub:DisableSecurityHub",
        "securityhub:DeleteMembers",
        "ec2:DeleteFlowLogs",
        "route53resolver:DeleteResolverQueryLogConfig",
        "logs:DeleteLogGroup",
        "logs:DeleteLogStream",
        "events:DisableRule",
        "events:DeleteRule",
        "events:RemoveTargets",
        "iam:DeactivateMFADevice",
        "iam:DeleteVirtualMFADevice",
        "monitoring:DeleteAlarms",
        "wafv2:DeleteWebACL",
        "wafv2:DeleteRuleGroup",
        "s3:DeleteBucketPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "ec2:DisableEbsEncryptionByDefault",
        "access-analyzer:DeleteAnalyzer",
        "macie2:DisableMacie",
    ),
    _CA: (
        "secretsmanager:GetSecretValue",
        "secretsmanager:BatchGetSecretValue",
        "ssm:GetParameters",
        "ec2:GetPasswordData",
        "ecr:GetAuthorizationToken",
        "rds:ModifyDBInstance",
        "iam:CreateServiceSpecificCredential",
        "ec2-instance-connect:SendSSHPublicKey",
        "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
        "ssm:StartSession",
        "ssm:SendCommand",
    ),
    _EX: (
        "ec2:ModifySnapshotAttribute",
        "ec2:ModifyImageAttribute",
        "rds:ModifyDBSnapshotAttribute",
        "rds:ModifyDBClusterSnapshotAttribute",
        "ec2:CreateInstanceExportTask",
        "rds:StartExportTask",
        "s3:PutBucketPolicy",
        "s3:PutBucketAcl",
        "s3:PutObjectAcl",
        "s3:PutBucketPublicAccessBlock",
        "s3:DeleteBucketPublicAccessBlock",
        "s3:PutBucketReplication",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:EnableSerialConsoleAccess",
        "transfer:CreateServer",
        "transfer:CreateUser",
    ),
}
# Switching off the logs or leaving the organization: nothing ordinary looks like it.
_CRITICAL: dict[str, tuple[str, ...]] = {
    _DE: (
        "cloudtrail:StopLogging",
        "cloudtrail:DeleteTrail",
        "guardduty:DeleteDetector",
        "guardduty:DisassociateFromMasterAccount",
        "guardduty:DisassociateFromAdministratorAccount",
        "config:StopConfigurationRecorder",
        "organizations:LeaveOrganization",
    ),
}


def expand_action(name: str) -> str:
    """`iam:CreateUser` → `iam.amazonaws.com:CreateUser`; full names are returned unchanged."""
    source, sep, event = name.partition(":")
    if sep and "." not in source:
        return f"{source}.amazonaws.com:{event}"
    return name


def default_sensitive_actions() -> dict[str, SensitiveAction]:
    """Full action name → (tactic, least severity)."""
    table: dict[str, SensitiveAction] = {}
    for severity, groups in (("high", _HIGH), ("critical", _CRITICAL)):
        for tactic, names in groups.items():
            for name in names:
                table[expand_action(name)] = SensitiveAction(tactic, severity)
    return table

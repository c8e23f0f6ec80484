"""Rule 5, the role's trust policy (with IAM enrichment): a role assumable by an AWS service, by
an identity provider not in the allow-list, or from another account is louder."""

from __future__ import annotations

from fnmatch import fnmatchcase

from .grade import Grade, PrincipalContext, names
from .settings import PolicySettings


def grade_trust(g: Grade, ctx: PrincipalContext, s: PolicySettings) -> None:
    role = ctx.role
    if role is None:
        return
    if role.trusted_services:
        g.at_least(
            s.service_trusted_role_severity,
            f"role is assumable by AWS service(s) {names(role.trusted_services)}, so its "
            "credentials live on compute an attacker may control",
        )
    if role.trusted_federated:
        unknown = [
            idp
            for idp in role.trusted_federated
            if not any(fnmatchcase(idp, glob) for glob in s.allowed_identity_providers)
        ]
        if unknown:
            g.at_least(
                s.federated_role_severity,
                f"role is assumable by identity provider(s) not in the allow-list: {names(unknown)}",
            )
        else:
            ctx_reason = names(role.trusted_federated)
            g.at_least("informational", f"role is federated through allowed IdP(s) {ctx_reason}")
    foreign = [a for a in role.trusted_accounts if a != ctx.account_id]
    if foreign:
        g.at_least(
            s.cross_account_role_severity,
            f"role is assumable from other account(s) {names(foreign)}",
        )

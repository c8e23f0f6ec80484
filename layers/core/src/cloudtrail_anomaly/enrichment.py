"""Enrichment: what AWS Organizations and IAM know about an alert's account and role.

Optional and off by default. The detector asks only for principals that are about to alert, so
enrichment costs a few calls per alert, not per record; adapters cache (see
`aws/enrichment.py`). A failed lookup never fails detection: the alert goes out without it.
"""

from __future__ import annotations

from typing import Protocol

from .domain.model import RoleInfo


class Enricher(Protocol):
    def account_name(self, account_id: str) -> str | None:
        """The account's name (Organizations), or None when unknown."""
        ...

    def account_owner(self, account_id: str) -> str | None:
        """Who owns the account: its e-mail address in Organizations, or None when unknown."""
        ...

    def role_info(self, role_arn: str) -> RoleInfo | None:
        """CreateDate and trust-policy principals of an IAM role, or None when unknown."""
        ...


class NoEnrichment:
    def account_name(self, account_id: str) -> str | None:
        return None

    def account_owner(self, account_id: str) -> str | None:
        return None

    def role_info(self, role_arn: str) -> RoleInfo | None:
        return None


class StaticEnrichment:
    """An in-memory `Enricher` (tests, and users who keep account names in a file)."""

    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        roles: dict[str, RoleInfo] | None = None,
        owners: dict[str, str] | None = None,
    ) -> None:
        self.accounts = accounts or {}
        self.roles = roles or {}
        self.owners = owners or {}

    def account_name(self, account_id: str) -> str | None:
        return self.accounts.get(account_id)

    def account_owner(self, account_id: str) -> str | None:
        return self.owners.get(account_id)

    def role_info(self, role_arn: str) -> RoleInfo | None:
        return self.roles.get(role_arn)

"""The AWS adapters of the `Enricher` seam: account names from Organizations, role CreateDate and
trust-policy principals from IAM.

Enrichment is asked only about principals that are about to alert (or are still learning), and
both adapters cache, so a busy trail costs a few calls an hour. A failed call never fails
detection: the answer is None (cached like an answer, so a missing permission is not retried on
every alert) and the failure is logged once, with the error code only: never credentials.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError

from ..app.settings import EnrichmentSettings
from ..domain.model import RoleInfo
from . import retry_config

log = logging.getLogger(__name__)

Clock = Callable[[], float]  # epoch seconds; compared with STS credential expirations
# boto3 clients are typed loosely: the project ships stubs for DynamoDB and S3 only.
OrganizationsClient = Any
StsClient = Any
IamClient = Any
IamClientFactory = Callable[[Mapping[str, Any]], IamClient]  # AssumeRole's Credentials → client

_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):role/(?:.*/)?(?P<name>[^/]+)\Z"
)
_ACCOUNT = re.compile(r"^[0-9]{12}\Z")
_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(?P<account>[0-9]{12}):")
SESSION_NAME = "cloudtrail-anomaly-enrichment"
_CREDENTIALS_MARGIN_S = 300  # stop using assumed credentials this long before they expire


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class _LogOnce:
    """Log each distinct failure once per process: enrichment runs per alert, and a missing
    permission would otherwise fill the log."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, ...]] = set()

    def warning(self, key: tuple[str, ...], message: str, *args: object) -> None:
        if key not in self._seen:
            self._seen.add(key)
            log.warning(message, *args)


class OrganizationsAccounts:
    """Account id → name and owner (the account's e-mail address) from Organizations
    ListAccounts (paginated), cached for `ttl_s`.

    Needs organizations:ListAccounts, i.e. the management account or a delegated
    administrator."""

    def __init__(
        self, org_client: OrganizationsClient, *, ttl_s: float = 3600.0, clock: Clock = time.time
    ) -> None:
        self._client = org_client
        self._ttl_s = ttl_s
        self._clock = clock
        self._names: dict[str, str] = {}
        self._owners: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._log = _LogOnce()

    def account_name(self, account_id: str) -> str | None:
        self._refresh()
        return self._names.get(account_id)

    def account_owner(self, account_id: str) -> str | None:
        self._refresh()
        return self._owners.get(account_id)

    def _refresh(self) -> None:
        now = self._clock()
        if self._loaded_at is None or now >= self._loaded_at + self._ttl_s:
            self._load(now)

    def _load(self, now: float) -> None:
        # Failed or not, the next try is one TTL away; a failure keeps the names we had.
        self._loaded_at = now
        try:
            names: dict[str, str] = {}
            owners: dict[str, str] = {}
            pages = self._client.get_paginator("list_accounts").paginate(
                PaginationConfig={"PageSize": 20}
            )
            for page in pages:
                for account in page.get("Accounts", []):
                    account_id = account.get("Id")
                    if not isinstance(account_id, str):
                        continue
                    if isinstance(account.get("Name"), str):
                        names[account_id] = account["Name"]
                    if isinstance(account.get("Email"), str):
                        owners[account_id] = account["Email"]
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            self._log.warning(
                ("list_accounts", code),
                "enrichment: cannot list Organizations accounts (%s); alerts go out without "
                "account names",
                code,
            )
            return
        self._names, self._owners = names, owners


class IamRoles:
    """Role ARN → `RoleInfo` (CreateDate, trust-policy principals), read with GetRole through
    `arn:<partition>:iam::<role's account>:role/<role_name>`, assumed with `sts_client`.
    Answers (None included) are cached per role for `ttl_s`; assumed credentials per account
    until five minutes before they expire (a failed AssumeRole for `ttl_s`)."""

    def __init__(
        self,
        sts_client: StsClient,
        iam_client_factory: IamClientFactory,
        role_name: str,
        clock: Clock = time.time,
        *,
        ttl_s: float = 3600.0,
    ) -> None:
        self._sts = sts_client
        self._iam_for = iam_client_factory
        self._role_name = role_name
        self._clock = clock
        self._ttl_s = ttl_s
        self._roles: dict[str, tuple[float, RoleInfo | None]] = {}
        self._clients: dict[str, tuple[float, IamClient]] = {}
        self._log = _LogOnce()

    def role_info(self, role_arn: str) -> RoleInfo | None:
        now = self._clock()
        cached = self._roles.get(role_arn)
        if cached is not None and now < cached[0]:
            return cached[1]
        info = self._fetch(role_arn, now)
        self._roles[role_arn] = (now + self._ttl_s, info)
        return info

    def _fetch(self, role_arn: str, now: float) -> RoleInfo | None:
        m = _ROLE_ARN.match(role_arn)
        if m is None:
            return None
        account = m["account"]
        iam = self._iam_client(m["partition"], account, now)
        if iam is None:
            return None
        try:
            role = iam.get_role(RoleName=m["name"])["Role"]
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            self._log.warning(
                ("get_role", account, code),
                "enrichment: cannot read IAM roles in account %s (GetRole: %s)",
                account,
                code,
            )
            return None
        services, federated, accounts = trust_principals(role.get("AssumeRolePolicyDocument"))
        created = role.get("CreateDate")
        return RoleInfo(
            arn=role_arn,
            created=int(created.timestamp()) if isinstance(created, datetime) else None,
            trusted_services=services,
            trusted_federated=federated,
            trusted_accounts=accounts,
        )

    def _iam_client(self, partition: str, account: str, now: float) -> IamClient | None:
        cached = self._clients.get(account)
        if cached is not None and now < cached[0]:
            return cached[1]
        reader = f"arn:{partition}:iam::{account}:role/{self._role_name}"
        try:
            credentials = self._sts.assume_role(RoleArn=reader, RoleSessionName=SESSION_NAME)[
                "Credentials"
            ]
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            self._log.warning(
                ("assume_role", account, code),
                "enrichment: cannot assume %s (%s); roles of account %s go unenriched",
                reader,
                code,
                account,
            )
            # Remember the failure as long as an answer, so each alert does not retry it.
            self._clients[account] = (now + self._ttl_s, None)
            return None
        expiration = credentials.get("Expiration")
        expires = (
            expiration.timestamp() - _CREDENTIALS_MARGIN_S
            if isinstance(expiration, datetime)
            else now + self._ttl_s
        )
        client = self._iam_for(credentials)
        self._clients[account] = (expires, client)
        return client


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _policy_dict(document: Any) -> dict[str, Any]:
    """boto3 decodes IAM policy documents; the raw API returns URL-encoded JSON."""
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return {}
    return document if isinstance(document, dict) else {}


def _account_of(principal: str) -> str | None:
    if principal == "*" or _ACCOUNT.match(principal):
        return principal
    m = _ARN_ACCOUNT.match(principal)
    return m["account"] if m else None  # a unique id (AROA...) of a deleted principal: unknown


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def trust_principals(document: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(services, federated IdPs, AWS accounts) allowed by a role's trust policy. Conditions
    are ignored: a condition narrows who may assume, not which kind of principal. `"*"` (anyone)
    counts as the account `*`."""
    statements = _policy_dict(document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    services: list[str] = []
    federated: list[str] = []
    accounts: list[str] = []
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal == "*":
            accounts.append("*")
            continue
        if not isinstance(principal, dict):
            continue
        services += _strings(principal.get("Service"))
        federated += _strings(principal.get("Federated"))
        for aws in _strings(principal.get("AWS")):
            account = _account_of(aws)
            if account is not None:
                accounts.append(account)
    return _unique(services), _unique(federated), _unique(accounts)


class AwsEnricher:
    """The `Enricher` of a deployment: each half present when its setting is on."""

    def __init__(
        self, accounts: OrganizationsAccounts | None = None, roles: IamRoles | None = None
    ) -> None:
        self.accounts = accounts
        self.roles = roles

    @classmethod
    def from_session(
        cls, session: Any, settings: EnrichmentSettings, clock: Clock = time.time
    ) -> AwsEnricher:
        """Build the clients once from a boto3 Session, per `[enrichment]`."""
        ttl_s = settings.cache_minutes * 60.0
        config = retry_config(max_attempts=3)  # an alert waits for this: fail fast
        accounts = roles = None
        if settings.organizations:
            accounts = OrganizationsAccounts(
                session.client("organizations", config=config), ttl_s=ttl_s, clock=clock
            )
        if settings.iam_roles:

            def iam_client(credentials: Mapping[str, Any]) -> IamClient:
                return session.client(
                    "iam",
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                    config=config,
                )

            roles = IamRoles(
                session.client("sts", config=config),
                iam_client,
                settings.iam_role_name,
                clock,
                ttl_s=ttl_s,
            )
        return cls(accounts, roles)

    def account_name(self, account_id: str) -> str | None:
        return self.accounts.account_name(account_id) if self.accounts else None

    def account_owner(self, account_id: str) -> str | None:
        return self.accounts.account_owner(account_id) if self.accounts else None

    def role_info(self, role_arn: str) -> RoleInfo | None:
        return self.roles.role_info(role_arn) if self.roles else None

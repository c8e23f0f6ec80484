"""The Splunk HEC token from AWS Secrets Manager or SSM Parameter Store, and the HEC sink a
Lambda (or the CLI) builds from its environment.

Environment (the values other than the token are read by `HecSettings.from_env`):

- `SPLUNK_HEC_URL`: the collector (`https://host:8088`, with or without `/services/collector/event`).
- The token, one of: `SPLUNK_HEC_TOKEN_SECRET` (a Secrets Manager secret name or ARN whose string
  is the token, or JSON with a `"token"` key), `SPLUNK_HEC_TOKEN_PARAMETER` (an SSM SecureString
  name), or `SPLUNK_HEC_TOKEN` (the token itself: for local runs; in Lambda it would be readable
  by anyone who can read the function's configuration).
- `SPLUNK_HEC_INDEX`, `SPLUNK_HEC_SOURCETYPE`, `SPLUNK_HEC_GZIP`, ... (see `HecSettings.from_env`),
  and `SPLUNK_MIN_SEVERITY`: alerts below it are not sent to Splunk.

The token is read through powertools Parameters providers built here on the boto3 clients given
(each provider caches in itself, `max_age` seconds: nothing is shared between sinks or tests). The
sink reads it at each delivery, from the cache, so a rotated token reaches a warm container within
`max_age`; after a configuration error (a 403 from HEC) the next delivery reads it afresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
import requests
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from botocore.exceptions import ClientError

from ..domain.model import Severity
from ..ports import AlertSink, DeliveryReport, PendingAlert
from ..sinks import with_min_severity
from ..sinks.splunk_hec import HecSettings, HecSettingsError, SplunkHecSink, TokenScrubber

log = logging.getLogger(__name__)

URL_ENV = "SPLUNK_HEC_URL"
# Names of variables, not tokens (ruff S105 reads "TOKEN" as a password).
TOKEN_ENV = "SPLUNK_HEC_TOKEN"  # noqa: S105
TOKEN_SECRET_ENV = "SPLUNK_HEC_TOKEN_SECRET"  # noqa: S105
TOKEN_PARAMETER_ENV = "SPLUNK_HEC_TOKEN_PARAMETER"  # noqa: S105
MIN_SEVERITY_ENV = "SPLUNK_MIN_SEVERITY"
DEFAULT_MAX_AGE_S = 300

Store = Literal["secretsmanager", "ssm"]
# boto3.client or a boto3.Session's .client, called with a service name (overloaded in the
# stubs, hence the loose type).
BotoClientFactory = Callable[..., Any]

# Answers that waiting will not change: someone has to fix the name, the policy or the key.
_PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidKeyId",
        "InvalidParameterException",
        "InvalidRequestException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "ValidationException",
    }
)
_UNREAD = "token-not-read-yet"  # stands in for the token while only the settings are checked


class TokenError(HecSettingsError):
    """The HEC token could not be read; the message names the variable and the secret, never
    the value. `permanent`: someone has to fix something (else: try again later)."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where the token is kept, and the variable that said so (for error messages)."""

    store: Store
    name: str
    variable: str

    def __str__(self) -> str:
        return f"{self.variable}={self.name}"


def token_ref(env: Mapping[str, str]) -> SecretRef | None:
    """The secret or parameter the environment names for the token; None when it names neither
    (the token is then `SPLUNK_HEC_TOKEN` itself)."""
    secret = env.get(TOKEN_SECRET_ENV, "").strip()
    parameter = env.get(TOKEN_PARAMETER_ENV, "").strip()
    if secret and parameter:
        raise HecSettingsError(
            f"both {TOKEN_SECRET_ENV} and {TOKEN_PARAMETER_ENV} are set: set only one"
        )
    if secret:
        return SecretRef("secretsmanager", secret, TOKEN_SECRET_ENV)
    if parameter:
        return SecretRef("ssm", parameter, TOKEN_PARAMETER_ENV)
    return None


def splunk_wanted(env: Mapping[str, str]) -> bool:
    """Whether the environment asks for Splunk at all (any of the URL or token variables set):
    a Lambda without them writes alerts as JSON lines to its log instead."""
    names = (URL_ENV, TOKEN_ENV, TOKEN_SECRET_ENV, TOKEN_PARAMETER_ENV)
    return any(env.get(name, "").strip() for name in names)


class SecretReader:
    """Reads a `SecretRef` through powertools Parameters (cached `max_age` seconds). Clients are
    made by `boto3_client` on first use, so only the store the environment names costs one."""

    def __init__(
        self, boto3_client: BotoClientFactory, *, max_age: int = DEFAULT_MAX_AGE_S
    ) -> None:
        self.boto3_client = boto3_client
        self.max_age = max_age
        self._secrets: SecretsProvider | None = None
        self._ssm: SSMProvider | None = None
        self._stale: set[SecretRef] = set()

    def __call__(self, ref: SecretRef) -> str:
        force = ref in self._stale
        try:
            if ref.store == "secretsmanager":
                if self._secrets is None:
                    self._secrets = SecretsProvider(
                        boto3_client=self.boto3_client("secretsmanager")
                    )
                value = self._secrets.get(ref.name, max_age=self.max_age, force_fetch=force)
            else:
                if self._ssm is None:
                    self._ssm = SSMProvider(boto3_client=self.boto3_client("ssm"))
                value = self._ssm.get(
                    ref.name, max_age=self.max_age, decrypt=True, force_fetch=force
                )
        except Exception as exc:
            raise _read_error(ref, exc) from None
        self._stale.discard(ref)
        return token_of(ref, value)

    def forget(self, ref: SecretRef) -> None:
        """Read `ref` from AWS again next time, not from the cache (the token may have rotated)."""
        self._stale.add(ref)


def token_of(ref: SecretRef, value: object) -> str:
    """The token in a secret's value: the string itself, or the `"token"` of a JSON object."""
    if isinstance(value, bytes):  # a SecretBinary
        try:
            value = value.decode()
        except UnicodeDecodeError:
            raise TokenError(f"{ref}: the secret is binary, not UTF-8 text") from None
    if not isinstance(value, str):
        raise TokenError(f"{ref}: the secret is not text")
    text = value.strip()
    if text.startswith("{"):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            # No detail: the decoder's message may quote the secret.
            raise TokenError(f"{ref}: the secret starts with '{{' but is not valid JSON") from None
        token = doc.get("token") if isinstance(doc, dict) else None
        if not isinstance(token, str):
            raise TokenError(f'{ref}: a JSON secret needs a "token" key holding the HEC token')
        text = token.strip()
    if not text:
        raise TokenError(f"{ref}: the token is empty")
    return text


def _read_error(ref: SecretRef, exc: Exception) -> TokenError:
    # powertools wraps the botocore error in GetParameterError; the original is its context.
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ClientError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        code = str(error.get("Code", ""))
        what = f"{code}: {error.get('Message', '')}".strip(": ")
        return TokenError(
            f"{ref}: cannot read the token ({what})", permanent=code in _PERMANENT_CODES
        )
    # Connection errors and timeouts (after botocore's retries).
    return TokenError(f"{ref}: cannot read the token ({type(exc).__name__})", permanent=False)


def hec_settings_from_env(
    env: Mapping[str, str], get_secret: Callable[[SecretRef], str]
) -> HecSettings:
    """Settings with the token read now: from the secret or parameter the environment names
    (through `get_secret`, e.g. a `SecretReader`), else from `SPLUNK_HEC_TOKEN`. Raises
    `HecSettingsError` (a `TokenError` when the token cannot be read) naming the variable."""
    checked = _settings_without_token(env)
    ref = token_ref(env)
    token = get_secret(ref) if ref is not None else env.get(TOKEN_ENV, "")
    if not token.strip():
        raise HecSettingsError(f"{TOKEN_ENV} is empty")
    return replace(checked, token=token.strip())


def _settings_without_token(env: Mapping[str, str]) -> HecSettings:
    """Every setting checked, the URL first, with a stand-in token (no AWS call)."""
    if not env.get(URL_ENV, "").strip():
        raise HecSettingsError(f"{URL_ENV} is not set (the collector, e.g. https://splunk:8088)")
    if token_ref(env) is None and not env.get(TOKEN_ENV, "").strip():
        raise HecSettingsError(
            f"no HEC token: set {TOKEN_SECRET_ENV} (a Secrets Manager secret name or ARN) or "
            f"{TOKEN_PARAMETER_ENV} (an SSM SecureString name); {TOKEN_ENV} for local runs"
        )
    try:
        return HecSettings.from_env(env, token=_UNREAD)
    except HecSettingsError as exc:
        message = str(exc)
    # Scrubbed of the stand-in only so far: a local token pasted into another variable too.
    raise HecSettingsError(TokenScrubber(env.get(TOKEN_ENV, "").strip())(message))


def min_severity_from_env(env: Mapping[str, str]) -> Severity | None:
    raw = env.get(MIN_SEVERITY_ENV, "").strip().lower()
    if not raw:
        return None
    try:
        return Severity(raw)
    except ValueError:
        raise HecSettingsError(
            f"{MIN_SEVERITY_ENV}={raw!r}: must be one of {', '.join(Severity)}"
        ) from None


def splunk_sink_from_env(
    env: Mapping[str, str],
    *,
    boto3_client: BotoClientFactory | None = None,
    max_age: int = DEFAULT_MAX_AGE_S,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AlertSink:
    """The Splunk HEC sink the environment describes, behind `SPLUNK_MIN_SEVERITY`.

    Every variable is checked now (`HecSettingsError` names the bad one); a token kept in
    Secrets Manager or SSM is read at each delivery through the cache (`boto3_client` makes the
    one client needed, e.g. `boto3.client` or `boto3.Session().client`), so a cold start does
    not depend on it and a rotated token is picked up."""
    settings = _settings_without_token(env)
    floor = min_severity_from_env(env)
    ref = token_ref(env)
    sink: AlertSink
    if ref is None:
        token = env.get(TOKEN_ENV, "").strip()
        sink = SplunkHecSink(
            replace(settings, token=token), session=session, sleep=sleep, clock=clock
        )
    else:
        if boto3_client is None:
            raise HecSettingsError(f"{ref.variable} is set but no boto3 client factory was given")
        sink = SecretTokenHecSink(
            settings,
            ref,
            SecretReader(boto3_client, max_age=max_age),
            session=session,
            sleep=sleep,
            clock=clock,
        )
    return with_min_severity(sink, floor)


class SecretTokenHecSink:
    """A `SplunkHecSink` whose token is read from a secret at each delivery (cached by the
    reader): a new token means a new sink over the same HTTP session."""

    name = SplunkHecSink.name

    def __init__(
        self,
        settings: HecSettings,
        ref: SecretRef,
        read: SecretReader,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings  # everything but the token
        self.ref = ref
        self.read = read
        self.session = session or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.sink: SplunkHecSink | None = None
        self._logged: set[str] = set()

    def __repr__(self) -> str:
        return f"SecretTokenHecSink(url={self.settings.url!r}, token_from={str(self.ref)!r})"

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        if not alerts:
            return DeliveryReport()
        try:
            token = self.read(self.ref)
        except TokenError as exc:
            return self._unreadable(alerts, exc)
        if self.sink is None or self.sink.settings.token != token:
            try:
                settings = replace(self.settings, token=token)
            except HecSettingsError as exc:  # a secret holding "Splunk <token>", say
                return self._unreadable(alerts, TokenError(f"{self.ref}: {exc}"))
            self.sink = SplunkHecSink(
                settings, session=self.session, sleep=self.sleep, clock=self.clock
            )
        report = self.sink.deliver(alerts)
        if report.config_error:
            self.read.forget(self.ref)  # a 403 after a rotation: read the new token next time
        return report

    def _unreadable(self, alerts: Sequence[PendingAlert], exc: TokenError) -> DeliveryReport:
        reason = f"Splunk HEC token unavailable: {exc}"
        report = DeliveryReport(pending=dict.fromkeys((a.alert_id for a in alerts), reason))
        report.counters["token_read_failures"] += 1
        if exc.permanent:
            report.config_error = reason
        if reason not in self._logged:
            self._logged.add(reason)
            log.error("%s; alerts stay pending", reason)
        return report

"""Settings: one TOML file, and each Lambda function's environment, validated at load with
errors that name the key or the variable.

The same file drives the CLI and the Lambda functions (the Lambdas read the file named by
$CLOUDTRAIL_ANOMALY_CONFIG, shipped in the function package). Every key has a default, so an
absent file or section means "the defaults"; an unknown key, a value of the wrong type or a bad
pattern is an error, never silently ignored. `config.example.toml` documents every key.

Each function reads its environment once, at cold start, into one frozen model
(`RealtimeSettings`, `ReconcileFunctionSettings`; README "Real-time path", "Reconciliation")
through one set of readers: a blank variable is an unset one, a bad one a `SettingsError` naming
it, so a mistake fails the cold start, not the first object. The AWS-side modules they name
(the ledger, Athena, the reconciliation) are imported only when a function's settings are read:
the CLI imports this module without the `aws` extra, and the real-time function without Athena.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..domain.detector import DetectionSettings
from ..domain.model import Severity
from ..domain.policy import IgnoreSettings, PolicySettings
from ..trail.reader import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from ..athena.schema import Partitioning, Projection, TableSpec
    from ..trail.layout import TrailLayout
    from ..usecases.reconcile import AthenaMode, ReconcileSettings

CONFIG_ENV = "CLOUDTRAIL_ANOMALY_CONFIG"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    max_object_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True, slots=True)
class EnrichmentSettings:
    organizations: bool = False  # account names from AWS Organizations
    iam_roles: bool = False  # role CreateDate and trust policy from IAM
    iam_role_name: str = "CloudTrailAnomalyReadOnly"  # role assumed in each account for IAM reads
    cache_minutes: int = 60


@dataclass(frozen=True, slots=True)
class Config:
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)
    ignore: IgnoreSettings = field(default_factory=IgnoreSettings)
    enrichment: EnrichmentSettings = field(default_factory=EnrichmentSettings)


_SECTIONS: dict[str, type[Any]] = {
    "detection": DetectionSettings,
    "policy": PolicySettings,
    "reader": ReaderSettings,
    "ignore": IgnoreSettings,
    "enrichment": EnrichmentSettings,
}
_POSITIVE = {
    "forget_days",
    "escalate_at",
    "max_object_bytes",
    "burst_window_minutes",
    "denied_escalate_at",
    "cache_minutes",
    "slow_novelty_actions",
    "slow_novelty_days",
    "slow_novelty_min_days",
}
_SEVERITIES = {s.value for s in Severity}
# [0-9] and [A-Za-z0-9_], not \d and \w (which take other scripts' digits and letters), and
# \Z, not $ (which lets a trailing newline through).
_ACCOUNT = re.compile(r"^[0-9]{12}\Z")
_GLOB_CHARS = re.compile(r"^[\x21-\x7e]+\Z")  # printable ASCII, no spaces
_ROLE_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,64}\Z")


def _check_value(where: str, name: str, value: Any, default: Any) -> Any:
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        for item in value:
            _check_pattern(where, name, item)
        return tuple(value)
    if isinstance(default, bool) != isinstance(value, bool):
        raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not type(default):
        raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        # TOML allows nan and inf; either would fail later, far from the config.
        raise ConfigError(f"{where}: must be finite, got {value!r}")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and (value < 0 or (name in _POSITIVE and value == 0)):
        bound = "> 0" if name in _POSITIVE else ">= 0"
        raise ConfigError(f"{where}: must be {bound}, got {value!r}")
    if isinstance(value, str):
        if name.endswith("severity") and value not in _SEVERITIES:
            raise ConfigError(f"{where}: must be one of {', '.join(Severity)}, got {value!r}")
        if name == "iam_role_name" and not _ROLE_NAME.match(value):
            raise ConfigError(f"{where}: not a valid IAM role name: {value!r}")
    return value


def _check_pattern(where: str, name: str, item: str) -> None:
    if not item or not _GLOB_CHARS.match(item):
        raise ConfigError(f"{where}: bad pattern {item!r} (printable, no spaces, not empty)")
    if name == "accounts" and not _ACCOUNT.match(item):
        raise ConfigError(f"{where}: {item!r} is not a 12-digit account id")
    if name in ("actions", "sensitive_actions_add", "sensitive_actions_remove") and ":" not in item:
        raise ConfigError(
            f"{where}: {item!r} is not an action pattern (eventSource:eventName, e.g. iam:CreateUser)"
        )
    if item.count("[") != item.count("]"):
        raise ConfigError(f"{where}: unbalanced [ ] in pattern {item!r}")


def _section(section: str, cls: type[Any], values: Any, origin: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: [{section}] must be a table")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    checked: dict[str, Any] = {}
    for name, value in values.items():
        where = f"{origin}: {section}.{name}"
        if name not in known:
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
        checked[name] = _check_value(where, name, value, getattr(defaults, name))
    return cls(**checked)


def parse_config(doc: dict[str, Any], origin: str = "<config>") -> Config:
    unknown = set(doc) - set(_SECTIONS)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown section(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(_SECTIONS)})"
        )
    parts = {
        name: _section(name, cls, doc[name], origin)
        for name, cls in _SECTIONS.items()
        if name in doc
    }
    detection = parts.get("detection")
    if detection is not None and detection.refresh_after_days > detection.forget_days / 2:
        raise ConfigError(
            f"{origin}: detection.refresh_after_days = {detection.refresh_after_days:g} is more "
            f"than half of forget_days = {detection.forget_days:g}: tuples would be forgotten "
            "that long before forget_days (leave it out for forget_days / 12)"
        )
    return Config(**parts)


def load_config(path: str | Path | None = None) -> Config:
    """Load `path`, else the file named by $CLOUDTRAIL_ANOMALY_CONFIG, else the defaults."""
    chosen = path or os.environ.get(CONFIG_ENV)
    if not chosen:
        return Config()
    try:
        with Path(chosen).open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{chosen}: cannot read config file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: invalid TOML: {exc}") from exc
    return parse_config(doc, str(chosen))


# -- the Lambda functions' environment ----------------------------------------------------------

# In Lambda the reader's cap follows the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE):
# the CLI's 1 GiB default would not fit in the deployed 1,024 MB. A gzip bomb stopped at the cap
# holds the cap and a piece; an object just under it, its records too: about 1.7 times its
# inflated size at peak (docs/benchmarks.md), beside the runtime and the baseline cache.
CAP_MEMORY_DIVISOR = 4  # the default cap: a quarter of the memory (256 MiB at 1,024 MB)
# A cap set above a third of the memory fails the cold start: the reader lets resident memory
# grow by up to 1.75 times the cap while it decodes one object (trail/reader.py), beside the
# runtime and the baseline cache.
MAX_CAP_MEMORY_DIVISOR = 3

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}\Z")  # \Z: `$` takes a trailing newline


class SettingsError(ValueError):
    """A missing or bad environment variable; the message names it."""


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    """The real-time function's settings, from its environment (see README, "Real-time path")."""

    baseline_table: str
    ledger_table: str
    ledger_ttl_days: float
    config_path: str = ""  # the TOML config (detection, policy, reader); "" = the defaults
    cache_size: int = 200_000
    write_concurrency: int = 8
    # Overrides [reader] max_object_bytes of the config. In Lambda: MAX_OBJECT_BYTES, else the
    # config's value when set, else a quarter of the memory (see `object_cap`).
    max_object_bytes: int | None = None
    # An SQS message is not started with less time than this left in the invocation: it is
    # handed back for a retry instead of being cut off by the timeout with the whole batch.
    min_remaining_seconds: float = 30.0
    metrics_namespace: str = "CloudTrailAnomaly"
    service_name: str = "cloudtrail-anomaly-realtime"  # powertools' service (logs, metrics)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, service: str = "cloudtrail-anomaly-realtime"
    ) -> RealtimeSettings:
        """`service` is the powertools service name when POWERTOOLS_SERVICE_NAME is unset."""
        from ..stores.dynamodb.ledger import DEFAULT_TTL_DAYS

        baseline = _table(env, "BASELINE_TABLE", required=True)
        config_path = _text(env, CONFIG_ENV)
        if config_path and not Path(config_path).is_file():
            raise SettingsError(f"{CONFIG_ENV}={config_path!r}: no such file in the function")
        max_object_bytes = _integer(env, "MAX_OBJECT_BYTES", 0, minimum=1) or None
        memory_mb = _integer(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, minimum=1)
        if memory_mb:
            max_object_bytes = object_cap(memory_mb, max_object_bytes, config_path)
        return cls(
            baseline_table=baseline,
            ledger_table=_table(env, "LEDGER_TABLE") or baseline,
            ledger_ttl_days=_number(env, "LEDGER_TTL_DAYS", DEFAULT_TTL_DAYS, minimum=1),
            config_path=config_path,
            cache_size=_integer(env, "BASELINE_CACHE_SIZE", 200_000, minimum=0),
            write_concurrency=_integer(env, "DYNAMODB_WRITE_CONCURRENCY", 8, minimum=1),
            max_object_bytes=max_object_bytes,
            min_remaining_seconds=_number(env, "MIN_REMAINING_SECONDS", 30.0, minimum=0),
            metrics_namespace=_text(env, "POWERTOOLS_METRICS_NAMESPACE", "CloudTrailAnomaly"),
            service_name=_text(env, "POWERTOOLS_SERVICE_NAME", service),
        )


def object_cap(memory_mb: int, explicit: int | None, config_path: str = "") -> int:
    """The reader's cap in a function of `memory_mb` MB: `explicit` (MAX_OBJECT_BYTES), else
    the config's [reader] max_object_bytes when it is set, else a quarter of the memory. A cap
    that cannot fit (more than a third of the memory) is a `SettingsError` naming its origin."""
    memory = memory_mb << 20
    limit = memory // MAX_CAP_MEMORY_DIVISOR
    default = memory // CAP_MEMORY_DIVISOR
    name = "MAX_OBJECT_BYTES"
    if explicit is None:
        explicit = load_config(config_path or None).reader.max_object_bytes
        if explicit == DEFAULT_MAX_BYTES:  # the CLI's default, not a choice made for Lambda
            return default
        name = f"{config_path}: reader.max_object_bytes"
    if explicit > limit:
        raise SettingsError(
            f"{name} = {explicit:,} bytes cannot fit in the function's {memory_mb:,} MB "
            "(AWS_LAMBDA_FUNCTION_MEMORY_SIZE): reading an object near the cap may take 1.75 "
            f"times the cap, so it may be at most a third of the memory, {limit:,} bytes. Lower "
            f"it, leave it out for a quarter of the memory ({default:,} bytes), or give the "
            "function more memory"
        )
    return explicit


@dataclass(frozen=True, slots=True)
class AthenaSettings:
    database: str = "cloudtrail_anomaly"
    table: str = "cloudtrail"
    workgroup: str = "primary"
    output_location: str = ""  # "" = the workgroup's
    partitioning: Partitioning = "projection"
    account_projection: Projection = "injected"
    region_projection: Projection = "injected"


@dataclass(frozen=True, slots=True)
class ReconcileFunctionSettings:
    """The reconciliation function's settings, from its environment (README, "Reconciliation"):
    the real-time function's own (it runs missed objects through the same parts), the trail,
    the reconciliation's window and Athena's table."""

    realtime: RealtimeSettings
    layout: TrailLayout
    reconcile: ReconcileSettings
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    athena: AthenaSettings = field(default_factory=AthenaSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReconcileFunctionSettings:
        from ..trail.layout import SqlInputError, TrailLayout
        from ..usecases.reconcile import ReconcileSettings

        realtime = RealtimeSettings.from_env(env, service="cloudtrail-anomaly-reconcile")
        bucket = _text(env, "TRAIL_BUCKET")
        if not bucket:
            raise SettingsError("TRAIL_BUCKET is not set: it must name the CloudTrail bucket")
        try:
            layout = TrailLayout(
                bucket, _text(env, "TRAIL_PREFIX").strip("/"), _text(env, "TRAIL_ORG_ID")
            )
        except SqlInputError as exc:
            raise SettingsError(f"TRAIL_BUCKET, TRAIL_PREFIX or TRAIL_ORG_ID: {exc}") from None
        settings = cls(
            realtime=realtime,
            layout=layout,
            accounts=_names(env, "TRAIL_ACCOUNTS"),
            regions=_names(env, "TRAIL_REGIONS"),
            reconcile=ReconcileSettings(
                lag_minutes=_number(env, "RECONCILE_LAG_MINUTES", 30.0, minimum=0),
                window_minutes=_number(env, "RECONCILE_WINDOW_MINUTES", 60.0, minimum=1),
                digest_lookback_minutes=_number(
                    env, "RECONCILE_DIGEST_LOOKBACK_MINUTES", 60.0, minimum=1
                ),
                athena=cast(
                    "AthenaMode", _choice(env, "RECONCILE_ATHENA", ("missed", "full", "off"))
                ),
            ),
            athena=AthenaSettings(
                database=_text(env, "ATHENA_DATABASE", "cloudtrail_anomaly"),
                table=_text(env, "ATHENA_TABLE", "cloudtrail"),
                workgroup=_text(env, "ATHENA_WORKGROUP", "primary"),
                output_location=_text(env, "ATHENA_OUTPUT_LOCATION"),
                partitioning=cast(
                    "Partitioning", _choice(env, "ATHENA_PARTITIONS", ("projection", "explicit"))
                ),
                account_projection=cast(
                    "Projection", _choice(env, "ATHENA_ACCOUNT_PROJECTION", ("injected", "enum"))
                ),
                region_projection=cast(
                    "Projection", _choice(env, "ATHENA_REGION_PROJECTION", ("injected", "enum"))
                ),
            ),
        )
        settings.table_spec()  # fail the cold start on a bad name, not the first query
        return settings

    def table_spec(self) -> TableSpec:
        from ..athena.schema import TableSpec
        from ..trail.layout import SqlInputError

        a = self.athena
        try:
            return TableSpec(
                a.database,
                a.table,
                self.layout,
                partitioning=a.partitioning,
                account_projection=a.account_projection,
                region_projection=a.region_projection,
                accounts=self.accounts,
                regions=self.regions,
            )
        except SqlInputError as exc:
            raise SettingsError(f"ATHENA_* or TRAIL_*: {exc}") from None


# The readers every function's settings go through. Blank is unset (the default).


def _text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _table(env: Mapping[str, str], name: str, required: bool = False) -> str:
    value = _text(env, name)
    if not value:
        if required:
            raise SettingsError(f"{name} is not set: it must name the DynamoDB table")
        return ""
    if not _TABLE_NAME.match(value):
        raise SettingsError(
            f"{name}={value!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"
        )
    return value


def _parse(env: Mapping[str, str], name: str, kind: type[float], minimum: float) -> float | None:
    raw = _text(env, name)
    if not raw:
        return None
    try:
        if not raw.isascii():  # int() and float() take Arabic-Indic and other digits
            raise ValueError(raw)
        value = kind(raw)
    except ValueError:
        article = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not {article}") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    value = _parse(env, name, int, minimum)
    return default if value is None else int(value)


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    value = _parse(env, name, float, minimum)
    return default if value is None else value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed`; the first when unset."""
    value = _text(env, name, allowed[0])
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} must be one of {', '.join(allowed)}")
    return value


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list; blanks between commas dropped."""
    return tuple(v.strip() for v in env.get(name, "").split(",") if v.strip())

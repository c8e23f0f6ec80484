"""Settings from one TOML file, validated at load with errors that name the key.

The same file drives the CLI and the Lambda functions (the Lambdas read the file named by
$CLOUDTRAIL_ANOMALY_CONFIG, shipped in the function package). Every key has a default, so an
absent file or section means "the defaults"; an unknown key, a value of the wrong type or a bad
pattern is an error, never silently ignored. `config.example.toml` documents every key.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..domain.detector import DetectionSettings
from ..domain.model import Severity
from ..domain.policy import IgnoreSettings, PolicySettings
from ..trail.reader import DEFAULT_MAX_BYTES

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

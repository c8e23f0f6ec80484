"""Settings from one TOML file, validated at load with errors that name the key.

The same file drives the CLI and the Lambda functions. Every key has a default, so an absent
file or section means "the defaults"; an unknown key or a value of the wrong type is an error,
never silently ignored. See `config.example.toml` for every key with its documentation.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .detector import DetectionSettings
from .policy import PolicySettings
from .reader import DEFAULT_MAX_BYTES

CONFIG_ENV = "CLOUDTRAIL_ANOMALY_CONFIG"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    max_object_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True, slots=True)
class Config:
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)


_SECTIONS: dict[str, type[Any]] = {
    "detection": DetectionSettings,
    "policy": PolicySettings,
    "reader": ReaderSettings,
}
_POSITIVE = {"forget_days", "refresh_after_days", "escalate_at", "max_object_bytes"}


def _check(section: str, cls: type[Any], values: Any, origin: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: [{section}] must be a table")
    known = {f.name: f for f in fields(cls)}
    for name, value in values.items():
        where = f"{origin}: {section}.{name}"
        if name not in known:
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
        default = getattr(cls(), name)
        if isinstance(default, bool) != isinstance(value, bool):
            raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")
        if isinstance(value, int | float) and (value < 0 or (name in _POSITIVE and value == 0)):
            raise ConfigError(
                f"{where}: must be {'> 0' if name in _POSITIVE else '>= 0'}, got {value!r}"
            )
        values[name] = value
    return cls(**values)


def parse_config(doc: dict[str, Any], origin: str = "<config>") -> Config:
    unknown = set(doc) - set(_SECTIONS)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown section(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(_SECTIONS)})"
        )
    parts = {
        name: _check(
            name, cls, dict(doc[name]) if isinstance(doc[name], dict) else doc[name], origin
        )
        for name, cls in _SECTIONS.items()
        if name in doc
    }
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

"""The TOML config: every documented key loads, the example equals the defaults, and every
mistake is an error that names the file and the key."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_anomaly.app.settings import (
    CONFIG_ENV,
    Config,
    ConfigError,
    load_config,
    parse_config,
)
from cloudtrail_anomaly.domain.model import DAY

EXAMPLE = Path(__file__).parent.parent / "config.example.toml"


def example_doc() -> dict[str, Any]:
    with EXAMPLE.open("rb") as fh:
        return tomllib.load(fh)


def test_the_example_file_equals_the_defaults() -> None:
    assert load_config(EXAMPLE) == Config()


def test_the_example_documents_every_key_and_nothing_else() -> None:
    doc = example_doc()
    config = Config()
    sections = {f.name: getattr(config, f.name) for f in fields(config)}
    assert set(doc) == set(sections)
    for name, settings in sections.items():
        assert set(doc[name]) == {f.name for f in fields(settings)}, name


def test_every_key_accepts_a_non_default_value() -> None:
    doc = {
        "detection": {
            "forget_days": 30,
            "refresh_after_days": 0.5,
            "per_session_roles": ["AWSReservedSSO_*", "breakglass-*"],
        },
        "reader": {"max_object_bytes": 1024},
        "policy": {
            "learning_days": 7,
            "account_learning": False,
            "escalate_at": 3,
            "burst_window_minutes": 30,
            "denied_escalate_at": 2,
            "new_region_bump": False,
            "root_severity": "critical",
            "sensitive_actions_add": ["dynamodb:Delete*"],
            "sensitive_actions_remove": ["ssm:StartSession"],
            "service_trusted_role_severity": "medium",
            "federated_role_severity": "critical",
            "cross_account_role_severity": "low",
            "allowed_identity_providers": ["token.actions.githubusercontent.com"],
            "min_severity": "low",
        },
        "ignore": {
            "principals": ["arn:aws:iam::*:role/OrganizationAccountAccessRole"],
            "actions": ["s3:Get*", "kms:Decrypt"],
            "event_sources": ["health.amazonaws.com"],
            "accounts": ["123456789012"],
        },
        "enrichment": {
            "organizations": True,
            "iam_roles": True,
            "iam_role_name": "SecurityAudit-Reader",
            "cache_minutes": 5,
        },
    }

    config = parse_config(doc)

    assert config.detection.forget_days == 30.0
    assert isinstance(config.detection.forget_days, float)  # an int is fine for a float key
    assert config.detection.per_session_roles == ("AWSReservedSSO_*", "breakglass-*")
    assert config.reader.max_object_bytes == 1024
    assert config.policy.learning_days == 7.0
    assert config.policy.account_learning is False
    assert config.policy.sensitive_actions_add == ("dynamodb:Delete*",)
    assert config.policy.min_severity == "low"
    assert config.ignore.accounts == ("123456789012",)
    assert config.enrichment.iam_role_name == "SecurityAudit-Reader"
    for section, values in doc.items():
        for key in values:
            got = getattr(getattr(config, section), key)
            default = getattr(getattr(Config(), section), key)
            assert got != default, f"{section}.{key} kept its default"


def test_absent_file_env_and_sections_mean_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert load_config() == Config()
    assert parse_config({}) == Config()
    assert parse_config({"policy": {}}) == Config()


def test_the_env_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[policy]\nmin_severity = "high"\n')
    monkeypatch.setenv(CONFIG_ENV, str(path))

    assert load_config().policy.min_severity == "high"
    # An explicit path wins over the environment.
    other = tmp_path / "other.toml"
    other.write_text("[policy]\nescalate_at = 9\n")
    explicit = load_config(other)
    assert explicit.policy.escalate_at == 9
    assert explicit.policy.min_severity == "informational"


def test_missing_or_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_config(bad)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[policy]\nescalate_at = 0\n")

    with pytest.raises(ConfigError, match=rf"^{path}: policy\.escalate_at: must be > 0"):
        load_config(path)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        # unknown keys and sections
        ({"polcy": {}}, r"unknown section\(s\) polcy \(known: detection, policy"),
        (
            {"policy": {"learning_day": 3}},
            r"policy\.learning_day: unknown key \(known: .*learning_days",
        ),
        ({"policy": 3}, r"\[policy\] must be a table"),
        # wrong types
        ({"policy": {"learning_days": "15"}}, r"policy\.learning_days: expected float, got '15'"),
        ({"policy": {"escalate_at": 5.5}}, r"policy\.escalate_at: expected int, got 5\.5"),
        ({"policy": {"escalate_at": True}}, r"policy\.escalate_at: expected int, got True"),
        ({"policy": {"account_learning": 1}}, r"policy\.account_learning: expected bool, got 1"),
        ({"ignore": {"accounts": "123456789012"}}, r"ignore\.accounts: expected a list of strings"),
        ({"ignore": {"actions": ["s3:Get*", 3]}}, r"ignore\.actions: expected a list of strings"),
        ({"enrichment": {"iam_role_name": 7}}, r"enrichment\.iam_role_name: expected str"),
        # out of range
        ({"policy": {"learning_days": -1}}, r"policy\.learning_days: must be >= 0, got -1\.0"),
        ({"policy": {"burst_window_minutes": 0}}, r"burst_window_minutes: must be > 0, got 0"),
        ({"policy": {"learning_days": float("nan")}}, r"policy\.learning_days: must be finite"),
        ({"detection": {"forget_days": float("inf")}}, r"detection\.forget_days: must be finite"),
        ({"reader": {"max_object_bytes": 0}}, r"reader\.max_object_bytes: must be > 0"),
        # bad patterns
        ({"ignore": {"principals": [""]}}, r"ignore\.principals: bad pattern ''"),
        (
            {"ignore": {"principals": ["arn:aws:iam::1:user/a b"]}},
            r"bad pattern 'arn:aws:iam::1:user/a b'",
        ),
        (
            {"ignore": {"actions": ["s3:Get[Object"]}},
            r"ignore\.actions: unbalanced \[ \] in pattern",
        ),
        (
            {"ignore": {"actions": ["GetObject"]}},
            r"ignore\.actions: 'GetObject' is not an action pattern",
        ),
        (
            {"policy": {"sensitive_actions_add": ["DeleteTable"]}},
            r"policy\.sensitive_actions_add: 'DeleteTable' is not an action pattern",
        ),
        (
            {"policy": {"sensitive_actions_remove": ["iam"]}},
            r"policy\.sensitive_actions_remove: 'iam' is not an action pattern",
        ),
        (
            {"detection": {"per_session_roles": ["AWSReservedSSO_* "]}},
            r"per_session_roles: bad pattern",
        ),
        # bad account ids
        (
            {"ignore": {"accounts": ["12345"]}},
            r"ignore\.accounts: '12345' is not a 12-digit account id",
        ),
        (
            {"ignore": {"accounts": ["12345678901*"]}},
            r"'12345678901\*' is not a 12-digit account id",
        ),
        # bad severities
        (
            {"policy": {"min_severity": "severe"}},
            r"policy\.min_severity: must be one of informational, low, medium, high, critical, got 'severe'",
        ),
        ({"policy": {"root_severity": "HIGH"}}, r"policy\.root_severity: must be one of"),
        (
            {"policy": {"cross_account_role_severity": ""}},
            r"cross_account_role_severity: must be one of",
        ),
        # bad role name
        (
            {"enrichment": {"iam_role_name": "role/with/path"}},
            r"enrichment\.iam_role_name: not a valid IAM role name",
        ),
    ],
)
def test_precise_errors(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(doc, "site.toml")


def test_every_severity_key_is_validated() -> None:
    severity_keys = [f.name for f in fields(Config().policy) if f.name.endswith("severity")]
    assert len(severity_keys) == 13  # exercised_power_severity (issue 16) is the 13th
    for key in severity_keys:
        with pytest.raises(ConfigError, match=rf"policy\.{key}: must be one of"):
            parse_config({"policy": {key: "loud"}})
        assert getattr(parse_config({"policy": {key: "critical"}}).policy, key) == "critical"


def test_a_refresh_interval_over_half_of_forget_days_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"refresh_after_days = 10 is more than half of forget_days = 14"
    ):
        parse_config({"detection": {"forget_days": 14, "refresh_after_days": 10}})
    assert (
        parse_config({"detection": {"forget_days": 14}}).detection.refresh_after == 14 * DAY // 12
    )
    assert parse_config({"detection": {"refresh_after_days": 2}}).detection.refresh_after == 2 * DAY


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        # A Unicode digit (ARABIC-INDIC DIGIT THREE) or a trailing newline: `\d` and `$` took both.
        ({"ignore": {"accounts": ["12345678901\u0663"]}}, r"ignore\.accounts: bad pattern"),
        ({"ignore": {"accounts": ["123456789012\n"]}}, r"bad pattern '123456789012\\n'"),
        ({"ignore": {"principals": ["arn:aws:iam::*:user/ci\n"]}}, r"ignore\.principals: bad"),
        ({"enrichment": {"iam_role_name": "ReadOnly\n"}}, r"not a valid IAM role name"),
        # `\w` took letters of any script; IAM role names are ASCII
        ({"enrichment": {"iam_role_name": "R\u00f4le"}}, r"not a valid IAM role name"),
    ],
    ids=repr,
)
def test_account_ids_patterns_and_role_names_are_ascii_with_nothing_after(
    doc: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(doc, "site.toml")

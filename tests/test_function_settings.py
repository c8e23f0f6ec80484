"""Each Lambda function's settings from its environment (app/settings.py): defaults, overrides,
and every bad variable a `SettingsError` that names it, at cold start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cloudtrail_anomaly.app.settings import (
    RealtimeSettings,
    ReconcileFunctionSettings,
    SettingsError,
)


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    s = RealtimeSettings.from_env({"BASELINE_TABLE": "baseline"})
    assert (s.baseline_table, s.ledger_table, s.ledger_ttl_days, s.cache_size) == (
        "baseline",
        "baseline",
        14.0,
        200_000,
    )
    s = RealtimeSettings.from_env(
        {
            "BASELINE_TABLE": "baseline",
            "LEDGER_TABLE": "ledger",
            "LEDGER_TTL_DAYS": "30",
            "BASELINE_CACHE_SIZE": "1000",
            "MAX_OBJECT_BYTES": "1048576",
            "CLOUDTRAIL_ANOMALY_CONFIG": str(config),
        }
    )
    assert (s.ledger_table, s.ledger_ttl_days, s.cache_size, s.max_object_bytes) == (
        "ledger",
        30.0,
        1000,
        1 << 20,
    )
    assert s.config_path == str(config)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "BASELINE_TABLE is not set"),
        ({"BASELINE_TABLE": "  "}, "BASELINE_TABLE is not set"),
        (
            {"BASELINE_TABLE": "bad name!"},
            "BASELINE_TABLE='bad name!' is not a DynamoDB table name",
        ),
        ({"BASELINE_TABLE": "table1", "LEDGER_TABLE": "x"}, "LEDGER_TABLE='x'"),
        (
            {"BASELINE_TABLE": "table1", "LEDGER_TTL_DAYS": "two weeks"},
            "LEDGER_TTL_DAYS='two weeks' is not a number",
        ),
        (
            {"BASELINE_TABLE": "table1", "LEDGER_TTL_DAYS": "0"},
            "LEDGER_TTL_DAYS='0' must be at least 1",
        ),
        (
            {"BASELINE_TABLE": "table1", "BASELINE_CACHE_SIZE": "1.5"},
            "BASELINE_CACHE_SIZE='1.5' is not an integer",
        ),
        (
            {"BASELINE_TABLE": "table1", "MAX_OBJECT_BYTES": "0"},
            "MAX_OBJECT_BYTES='0' must be at least 1",
        ),
        # int() and float() take Arabic-Indic and other digits; the settings do not
        (
            {"BASELINE_TABLE": "table1", "MAX_OBJECT_BYTES": "\u0661\u0660\u0662\u0664"},
            "MAX_OBJECT_BYTES='\u0661\u0660\u0662\u0664' is not an integer",
        ),
        (
            {"BASELINE_TABLE": "table1", "LEDGER_TTL_DAYS": "\u0663\u0660"},
            "LEDGER_TTL_DAYS='\u0663\u0660' is not a number",
        ),
        (
            {"BASELINE_TABLE": "table1", "CLOUDTRAIL_ANOMALY_CONFIG": "/nope.toml"},
            "CLOUDTRAIL_ANOMALY_CONFIG='/nope.toml'",
        ),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        RealtimeSettings.from_env(env)
    assert message in str(err.value)


# -- the reader's cap in Lambda: from the memory size ---------------------------------------------

MIB = 1 << 20
LAMBDA = {"BASELINE_TABLE": "baseline", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}


def test_in_lambda_the_cap_is_a_quarter_of_the_memory() -> None:
    # Not the CLI's 1 GiB, which a 1,024 MB function cannot inflate (a bomb was OOM-killed).
    assert RealtimeSettings.from_env(LAMBDA).max_object_bytes == 256 * MIB
    env = {**LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}
    assert RealtimeSettings.from_env(env).max_object_bytes == 2560 * MIB
    # Outside Lambda the config's (or the reader's) default stands.
    assert RealtimeSettings.from_env({"BASELINE_TABLE": "baseline"}).max_object_bytes is None


def test_in_lambda_an_explicit_cap_wins_up_to_a_third_of_the_memory(tmp_path: Path) -> None:
    env = {**LAMBDA, "MAX_OBJECT_BYTES": str(1024 * MIB // 3)}
    assert RealtimeSettings.from_env(env).max_object_bytes == 1024 * MIB // 3
    env["MAX_OBJECT_BYTES"] = str(MIB)
    assert RealtimeSettings.from_env(env).max_object_bytes == MIB
    config = tmp_path / "config.toml"
    config.write_text(f"[reader]\nmax_object_bytes = {64 * MIB}\n")
    env = {**LAMBDA, "CLOUDTRAIL_ANOMALY_CONFIG": str(config)}
    assert RealtimeSettings.from_env(env).max_object_bytes == 64 * MIB
    env["MAX_OBJECT_BYTES"] = str(128 * MIB)  # the variable over the config
    assert RealtimeSettings.from_env(env).max_object_bytes == 128 * MIB


def test_in_lambda_a_cap_that_cannot_fit_fails_the_cold_start(tmp_path: Path) -> None:
    env = {**LAMBDA, "MAX_OBJECT_BYTES": str(1024 * MIB // 3 + 1)}
    with pytest.raises(SettingsError) as err:
        RealtimeSettings.from_env(env)
    message = str(err.value)
    assert "MAX_OBJECT_BYTES = 357,913,942 bytes cannot fit in the function's 1,024 MB" in message
    assert "at most a third of the memory, 357,913,941 bytes" in message
    assert "a quarter of the memory (268,435,456 bytes)" in message
    # The same from the config file, which names itself.
    config = tmp_path / "config.toml"
    config.write_text(f"[reader]\nmax_object_bytes = {900 * MIB}\n")
    with pytest.raises(
        SettingsError, match=r"config\.toml: reader\.max_object_bytes = 943,718,400"
    ):
        RealtimeSettings.from_env({**LAMBDA, "CLOUDTRAIL_ANOMALY_CONFIG": str(config)})
    with pytest.raises(SettingsError, match="AWS_LAMBDA_FUNCTION_MEMORY_SIZE='lots'"):
        RealtimeSettings.from_env({**LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"})


# -- the reconciliation function ------------------------------------------------------------------

RECONCILE = {"BASELINE_TABLE": "baseline", "TRAIL_BUCKET": "trail-logs"}


def test_reconcile_defaults_and_overrides() -> None:
    s = ReconcileFunctionSettings.from_env(RECONCILE)
    assert s.realtime.service_name == "cloudtrail-anomaly-reconcile"
    assert (s.reconcile.lag_minutes, s.reconcile.window_minutes, s.reconcile.athena) == (
        30.0,
        60.0,
        "missed",
    )
    assert (s.athena.database, s.athena.table, s.athena.workgroup, s.athena.partitioning) == (
        "cloudtrail_anomaly",
        "cloudtrail",
        "primary",
        "projection",
    )
    s = ReconcileFunctionSettings.from_env(
        {
            **RECONCILE,
            "POWERTOOLS_SERVICE_NAME": "mine",
            "TRAIL_PREFIX": "/logs/",
            "TRAIL_REGIONS": " us-east-1, ,eu-west-1 ",
            "RECONCILE_LAG_MINUTES": " 0 ",
            "RECONCILE_ATHENA": "off",
            "ATHENA_PARTITIONS": "explicit",
        }
    )
    assert s.realtime.service_name == "mine"
    assert (s.layout.prefix, s.regions) == ("logs", ("us-east-1", "eu-west-1"))
    assert (s.reconcile.lag_minutes, s.reconcile.athena, s.athena.partitioning) == (
        0.0,
        "off",
        "explicit",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECONCILE_WINDOW_MINUTES": "0.5"}, "RECONCILE_WINDOW_MINUTES='0.5' must be at least 1"),
        ({"RECONCILE_LAG_MINUTES": "soon"}, "RECONCILE_LAG_MINUTES='soon' is not a number"),
        # the same readers as the real-time function's: no Arabic-Indic digits here either
        ({"RECONCILE_LAG_MINUTES": "\u0663\u0660"}, "RECONCILE_LAG_MINUTES='\u0663\u0660' is not"),
        ({"RECONCILE_ATHENA": "always"}, "RECONCILE_ATHENA='always' must be one of missed, full"),
        ({"BASELINE_TABLE": ""}, "BASELINE_TABLE is not set"),
        ({"TRAIL_BUCKET": " "}, "TRAIL_BUCKET is not set"),
        ({"TRAIL_PREFIX": "a b"}, "TRAIL_BUCKET, TRAIL_PREFIX or TRAIL_ORG_ID: "),
        ({"ATHENA_TABLE": "Cloud-Trail"}, "ATHENA_* or TRAIL_*: "),
    ],
)
def test_reconcile_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        ReconcileFunctionSettings.from_env({**RECONCILE, **env})
    assert message in str(err.value)


def test_the_settings_import_neither_boto3_nor_athena_until_a_function_reads_them() -> None:
    """The CLI imports app/settings.py without the aws extra, and the real-time function's cold
    start should not pay for the reconciliation's modules."""
    code = (
        "import sys; import cloudtrail_anomaly.app.settings; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore') "
        "or m.startswith(('cloudtrail_anomaly.athena', 'cloudtrail_anomaly.usecases.reconcile'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"

"""S3 key parsing: both delivery layouts, every skipped kind, and keys reported as invalid."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from cloudtrail_anomaly.trail.keys import (
    ACCOUNT_RE,
    ORG_ID_RE,
    REGION_RE,
    KeyKind,
    classify_key,
    classify_local_path,
    delivery_sort_key,
)

ACCOUNT = "123456789012"
LOG_KEY = (
    f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/"
    f"{ACCOUNT}_CloudTrail_us-east-1_20240601T0305Z_AbC123xyz.json.gz"
)


def _log(region: str = "us-east-1", account: str = ACCOUNT, stamp: str = "20240601T0305Z") -> str:
    return (
        f"{account}/CloudTrail/{region}/{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}/"
        f"{account}_CloudTrail_{region}_{stamp}_AbC123xyz.json.gz"
    )


def test_single_account_key_without_prefix() -> None:
    c = classify_key(LOG_KEY)
    assert c.kind is KeyKind.LOG
    k = c.log_key
    assert k is not None
    assert (k.prefix, k.org_id, k.account_id, k.region) == ("", None, ACCOUNT, "us-east-1")
    assert k.day == date(2024, 6, 1)
    assert k.delivered_at == datetime(2024, 6, 1, 3, 5, tzinfo=UTC)
    assert k.uid == "AbC123xyz"
    assert k.key == LOG_KEY


def test_single_account_key_with_prefix() -> None:
    c = classify_key("trails/prod/" + LOG_KEY)
    assert c.kind is KeyKind.LOG
    assert c.log_key is not None
    assert c.log_key.prefix == "trails/prod/"
    assert c.log_key.org_id is None


def test_uncompressed_log_key_is_a_log() -> None:
    c = classify_key(LOG_KEY.removesuffix(".gz"))
    assert c.kind is KeyKind.LOG


@pytest.mark.parametrize("prefix", ["", "org-trail/"])
def test_organization_key(prefix: str) -> None:
    c = classify_key(f"{prefix}AWSLogs/o-a1b2c3d4e5/{_log()}")
    assert c.kind is KeyKind.LOG, c.reason
    assert c.log_key is not None
    assert c.log_key.org_id == "o-a1b2c3d4e5"
    assert c.log_key.account_id == ACCOUNT
    assert c.log_key.prefix == prefix


@pytest.mark.parametrize(
    ("folder", "reason"),
    [
        ("CloudTrail-Digest", "digest"),
        ("CloudTrail-Insight", "insight"),
        ("CloudTrail-NetworkActivity", "network_activity"),
        ("CloudTrail-Aggregated", "aggregated"),
    ],
)
@pytest.mark.parametrize("org", ["", "o-a1b2c3d4e5/"])
def test_non_log_kinds_are_skipped_with_a_reason(folder: str, reason: str, org: str) -> None:
    key = (
        f"prefix/AWSLogs/{org}{ACCOUNT}/{folder}/us-east-1/2024/06/01/"
        f"{ACCOUNT}_{folder}_us-east-1_20240601T030512Z.json.gz"
    )
    c = classify_key(key)
    assert c.kind is KeyKind.SKIP
    assert c.reason == reason
    assert c.log_key is None


@pytest.mark.parametrize(
    "key",
    ["", "AWSLogs/", f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/", "prefix/AWSLogs/"],
)
def test_folder_markers_are_skipped(key: str) -> None:
    c = classify_key(key)
    assert (c.kind, c.reason) == (KeyKind.SKIP, "folder_marker")


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("somewhere/else/file.json.gz", "not a CloudTrail key"),
        (f"AWSLogs/{ACCOUNT}/Config/us-east-1/x.json.gz", "not a CloudTrail key"),
        (f"AWSLogs/{ACCOUNT}/CloudTrail-Future/us-east-1/x.json.gz", "unknown CloudTrail folder"),
        (f"AWSLogs/12345678901/{_log(account='12345678901')[12:]}", "bad account id"),
        (f"AWSLogs/12345678901a/{_log()[13:]}", "bad account id '12345678901a'"),
        (f"AWSLogs/{_log(region='us-east')}", "bad region 'us-east'"),
        (f"AWSLogs/{_log(region='US-EAST-1')}", "bad region 'US-EAST-1'"),
        (f"AWSLogs/{_log(region='ap-isob-central-3r')}", "bad region"),
        (f"AWSLogs/{_log(stamp='20241301T0000Z')}", "bad date"),
        (f"AWSLogs/{_log(stamp='20240230T0000Z')}", "bad date"),
        (f"AWSLogs/{_log(stamp='20240601T2560Z')}", "bad date"),
        (f"AWSLogs/{_log(stamp='20240601T2360Z')}", "bad date"),
        (f"AWSLogs/o-ABC/{_log()}", "bad organization id 'o-ABC'"),
        (f"AWSLogs/o-short/{_log()}", "bad organization id"),
        # an organization id where the account should be, with no account after it
        (f"AWSLogs/o-a1b2c3d4e5/CloudTrail/us-east-1/2024/06/01/{ACCOUNT}", "bad account id"),
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/{ACCOUNT}_CloudTrail_us-east-1.json.gz",
            "log key does not match",
        ),
        (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/notes.txt", "log key does not match"),
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/"
            f"210987654321_CloudTrail_us-east-1_20240601T0305Z_AbC.json.gz",
            "disagree with the folder",
        ),
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/"
            f"{ACCOUNT}_CloudTrail_eu-west-1_20240601T0305Z_AbC.json.gz",
            "disagree with the folder",
        ),
    ],
)
def test_invalid_keys_are_reported_with_the_problem(key: str, named: str) -> None:
    c = classify_key(key)
    assert c.kind is KeyKind.INVALID
    assert c.log_key is None
    assert named in c.reason
    assert repr(key) in c.reason  # the message says which key


@pytest.mark.parametrize(
    "region",
    ["us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1", "us-isob-east-1"],
)
def test_govcloud_china_and_iso_regions(region: str) -> None:
    c = classify_key(f"AWSLogs/{_log(region=region)}")
    assert c.kind is KeyKind.LOG, c.reason
    assert c.log_key is not None
    assert c.log_key.region == region


def test_local_path_in_a_digest_folder_is_skipped() -> None:
    path = "/data/samples/CloudTrail-Digest/cloudtrail-log-file-validation-digest.json.gz"
    assert classify_key(path).kind is KeyKind.INVALID
    c = classify_local_path(path)
    assert (c.kind, c.reason) == (KeyKind.SKIP, "digest")


def test_local_path_with_a_delivery_layout_is_a_log() -> None:
    c = classify_local_path(f"/home/me/bucket/AWSLogs/{_log()}")
    assert c.kind is KeyKind.LOG
    assert c.log_key is not None
    assert c.log_key.prefix == "/home/me/bucket/"


def test_local_path_with_any_other_name_is_invalid_not_skipped() -> None:
    c = classify_local_path("/tmp/my-export.json.gz")
    assert c.kind is KeyKind.INVALID


def test_delivery_sort_key_orders_by_stamp_then_name() -> None:
    later_a = f"AWSLogs/{_log(account='111111111111', stamp='20240601T0310Z')}"
    early_b = f"AWSLogs/{_log(account='999999999999', stamp='20240601T0305Z')}"
    same_stamp_a = f"AWSLogs/{_log(account='111111111111', stamp='20240601T0305Z')}"
    next_day = f"AWSLogs/{_log(stamp='20240602T0000Z')}"
    no_stamp = "ad-hoc/zzz-export.json.gz"
    other_no_stamp = "ad-hoc/aaa-export.json.gz"
    names = [next_day, later_a, early_b, no_stamp, same_stamp_a, other_no_stamp]
    assert sorted(names, key=delivery_sort_key) == [
        other_no_stamp,
        no_stamp,
        same_stamp_a,
        early_b,
        later_a,
        next_day,
    ]


def test_delivery_sort_key_reads_digest_stamps_with_seconds_and_only_the_file_name() -> None:
    # The stamp is taken from the file name only, truncated to the minute.
    digest = "2024/01/01T0000Z/x/123_CloudTrail-Digest_us-east-1_trail_us-east-1_20240601T030559Z.json.gz"
    log = f"AWSLogs/{_log(stamp='20240601T0306Z')}"
    assert delivery_sort_key(digest)[0] == "20240601T0305"
    assert sorted([log, digest], key=delivery_sort_key) == [digest, log]


# An account id with a Unicode digit (ARABIC-INDIC DIGIT THREE) or a trailing newline: `\d` and
# `$` would take either.
NOT_ACCOUNTS = ["12345678901\u0663", "123456789012\n"]


@pytest.mark.parametrize("account", NOT_ACCOUNTS, ids=repr)
def test_account_ids_are_ascii_digits_and_nothing_after(account: str) -> None:
    assert ACCOUNT_RE.match(account) is None
    # in the folder, in the file name, or both
    for key in (
        f"AWSLogs/{account}/{_log()[13:]}",
        f"AWSLogs/{_log(account=account)}",
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/"
        f"{account}_CloudTrail_us-east-1_20240601T0305Z_AbC.json.gz",
    ):
        assert classify_key(key).kind is KeyKind.INVALID, repr(key)


@pytest.mark.parametrize("region", ["us-east-\u0661", "us-east-1\n", "eu-west-\uff11"], ids=repr)
def test_regions_are_ascii_and_nothing_after(region: str) -> None:
    assert REGION_RE.match(region) is None
    assert classify_key(f"AWSLogs/{_log(region=region)}").kind is KeyKind.INVALID


def test_a_key_with_a_trailing_newline_is_not_a_log() -> None:
    assert classify_key(LOG_KEY + "\n").kind is KeyKind.INVALID
    assert ORG_ID_RE.match("o-a1b2c3d4e5\n") is None


def test_stamps_are_ascii_digits() -> None:
    assert delivery_sort_key("x_2024060\u0661T0305Z.json.gz")[0] == ""
    assert classify_key(LOG_KEY.replace("T0305Z", "T030\u0665Z")).kind is KeyKind.INVALID

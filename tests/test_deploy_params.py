"""Deploy parameters are checked when the stack is packaged, not at the first cold start: unknown
names (with the known ones listed), bad values, missing ones, each reported in one line, and
per-stage files (infra/params/<stage>.yml) so a redeploy cannot forget one. No build is needed:
the parameters fail before packaging starts, and `serverless print` shows what a good set gives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SLS = ROOT / "node_modules" / ".bin" / "serverless"
SPLUNK = "splunkUrl=https://splunk.example.com:8088"
KEY = "arn:aws:kms:{region}:111122223333:key/9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or not SLS.exists():
        pytest.skip("osls is not installed (npm ci): the deployment is packaged by osls")
    root = tmp_path_factory.mktemp("params")
    shutil.copytree(ROOT / "infra", root / "infra", ignore=shutil.ignore_patterns(".serverless"))
    (root / "layers").symlink_to(ROOT / "layers")  # settings.js reads the core's names.json
    return root / "infra"


def sls(infra: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return subprocess.run(
        [str(SLS), command, *args], cwd=infra, env=env, capture_output=True, text=True, timeout=120
    )


def package(infra: Path, *params: str, region: str = "us-east-1") -> list[str]:
    """The lines `npm run package` prints for these parameters; it must have failed."""
    args = ["--region", region] if region else []
    result = sls(infra, "package", *args, *(f"--param={p}" for p in params))
    assert result.returncode != 0
    return (result.stdout + result.stderr).splitlines()


def known_params(infra: Path) -> list[str]:
    (line,) = package(infra, "trailBucket=b-1", "nonsense=1")
    return line.split("; known params: ")[1].split(", ")


def test_a_missing_trail_bucket_is_one_line(infra: Path) -> None:
    assert package(infra) == [
        'Error: param trailBucket is required: --param="trailBucket=..." or'
        ' "trailBucket: ..." in infra/params/dev.yml'
    ]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("alarmEmial", "alarmEmail"),
        ("splunkMinSeverty", "splunkMinSeverity"),
        ("splunkURL", "splunkUrl"),
    ],
)
def test_an_unknown_name_fails_with_the_known_ones(infra: Path, typo: str, meant: str) -> None:
    (line,) = package(infra, "trailBucket=b-1", SPLUNK, "splunkSecret=s", f"{typo}=x")
    assert line.startswith(
        f"Error: --param: unknown param {typo} (did you mean {meant}?); known params: "
    )
    known = known_params(infra)
    assert meant in known and known == sorted(known, key=str.lower)
    assert {"trailBucket", "kmsKeyArn", "subnetIds", "accessLogsBucket"} <= set(known)


def test_no_parameter_takes_the_hec_token_itself(infra: Path) -> None:
    """The token is only ever read from its secret or parameter, by name."""
    assert not [
        name for name in known_params(infra) if "token" in name.lower() and "Kms" not in name
    ]


def test_no_silent_default_region(infra: Path) -> None:
    assert package(infra, "trailBucket=b-1", region="") == [
        "Error: no region: deploy in the trail bucket's region with --region REGION,"
        ' or "region: REGION" in infra/params/dev.yml'
    ]


def test_every_problem_is_one_line(infra: Path) -> None:
    lines = package(infra, "splunkMinSeverity=severe", "batchSize=lots", region="")
    assert lines == [
        'Error: param trailBucket is required: --param="trailBucket=..." or'
        ' "trailBucket: ..." in infra/params/dev.yml',
        "Error: param batchSize=lots: a whole number from 1 to 10000",
        "Error: param splunkMinSeverity=severe: expected informational, low, medium, high, critical",
        "Error: no region: deploy in the trail bucket's region with --region REGION,"
        ' or "region: REGION" in infra/params/dev.yml',
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["trailBucket=Not_A_Bucket"], "param trailBucket=Not_A_Bucket: not an S3 bucket name"),
        (["trailBucket=b-1", "trigger=s3", "eventBridge=true"], "it needs trigger=sqs"),
        (["trailBucket=b-1", "trigger=lambda"], "param trigger=lambda: expected sqs, s3"),
        (["trailBucket=b-1", "eventBridge=maybe"], "expected true or false"),
        (["trailBucket=b-1", "orgId=123"], "param orgId=123: an organization id"),
        (["trailBucket=b-1", "reconcileReservedConcurrency=0"], "a count, or off"),
        (["trailBucket=b-1", "batchSize=0"], "param batchSize=0: a whole number from 1 to 10000"),
        (["trailBucket=b-1", "batchSize=50", "batchWindowSeconds=0"], "at least 1"),
        (
            ["trailBucket=b-1", "realtimeTimeout=60", "minRemainingSeconds=30"],
            "under half of realtimeTimeout=60",
        ),
        (["trailBucket=b-1", "realtimeMemory=64"], "a whole number from 128 to 10240"),
        (["trailBucket=b-1", "logRetentionDays=42"], "param logRetentionDays=42: expected 1, 3,"),
        (
            ["trailBucket=b-1", "maxObjectBytes=999999999"],
            "at most a third of the functions' memory",
        ),
        (["trailBucket=b-1", SPLUNK], "param splunkUrl needs the token"),
        (["trailBucket=b-1", "splunkUrl=http://splunk:8088", "splunkSecret=s"], "an https:// URL"),
        (["trailBucket=b-1", "splunkSecret=s"], "need splunkUrl"),
        (["trailBucket=b-1", "splunkMinSeverity=high"], "need splunkUrl"),
        (["trailBucket=b-1", SPLUNK, "splunkSecret=s", "splunkParameter=p"], "set only one"),
        (
            [
                "trailBucket=b-1",
                SPLUNK,
                "splunkSecret=arn:aws:secretsmanager:eu-west-1:111122223333:secret:x",
            ],
            "is in eu-west-1, the stack in us-east-1",
        ),
        (
            ["trailBucket=b-1", "reservedConcurrency=5", "maximumConcurrency=6"],
            "above reservedConcurrency=5",
        ),
        (["trailBucket=b-1", "reservedConcurrency=1"], "at least 2 with trigger=sqs"),
        (["trailBucket=b-1", "enrichmentRoleName=ReadOnly"], "give orgId or trailAccounts"),
        (["trailBucket=b-1", "trailAccounts=1234"], "1234: 12-digit account ids"),
        (["trailBucket=b-1", "subnetIds=subnet-0123456789abcdef0"], "set both (VPC) or neither"),
        (["trailBucket=b-1", "securityGroupIds=sg-1"], "security group ids, comma-separated"),
        (["trailBucket=b-1", f"kmsKeyArn={KEY.format(region='eu-west-1')}"], "is in eu-west-1"),
        (["trailBucket=b-1", "accessLogsBucket=Logs"], "param accessLogsBucket=Logs: not an S3"),
        (["trailBucket=b-1", "region=eu-west-1"], "unknown param region (the region is --region"),
    ],
)
def test_a_bad_value_fails_the_package_in_one_line(
    infra: Path, params: list[str], message: str
) -> None:
    (line,) = package(infra, *params)
    assert line.startswith("Error: ") and message in line


@pytest.fixture
def stage_file(infra: Path) -> Iterator[Path]:
    path = infra / "params" / "prodtest.yml"
    path.parent.mkdir(exist_ok=True)
    yield path
    path.unlink()


def test_a_stage_file_holds_the_stages_parameters_and_region(infra: Path, stage_file: Path) -> None:
    stage_file.write_text(
        "region: eu-west-1\n"
        "trailBucket: acme-org-trail\n"
        "splunkUrl: https://splunk.acme.com:8088\n"
        "splunkSecret: cloudtrail-anomaly/hec\n"
        "splunkMinSeverity: medium\n"
    )
    result = sls(infra, "print", "--stage", "prodtest", "--param=splunkIndex=security")
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    assert "region: eu-west-1" in printed
    assert "TRAIL_BUCKET: acme-org-trail" in printed
    assert "SPLUNK_HEC_URL: https://splunk.acme.com:8088" in printed
    assert "SPLUNK_HEC_TOKEN_SECRET: cloudtrail-anomaly/hec" in printed
    assert "SPLUNK_MIN_SEVERITY: medium" in printed
    assert "SPLUNK_HEC_INDEX: security" in printed  # --param adds to (and overrides) the file
    # --region and --param win over the file.
    result = sls(
        infra,
        "print",
        "--stage",
        "prodtest",
        "--region",
        "eu-central-1",
        "--param=trailBucket=other",
    )
    assert result.returncode == 0, result.stderr
    assert "region: eu-central-1" in result.stdout and "TRAIL_BUCKET: other" in result.stdout


def test_a_stage_files_typo_names_the_file(infra: Path, stage_file: Path) -> None:
    stage_file.write_text("region: eu-west-1\ntrailBucket: b-1\nsplunkURL: https://x\n")
    result = sls(infra, "package", "--stage", "prodtest")
    assert result.returncode != 0
    (line,) = (result.stdout + result.stderr).splitlines()
    assert line.startswith(
        "Error: infra/params/prodtest.yml: unknown param splunkURL (did you mean splunkUrl?)"
    )

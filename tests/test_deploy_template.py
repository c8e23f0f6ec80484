"""The deployment: scripts/build_layers.py's zips and the CloudFormation that osls packages from
infra/serverless.yml, offline and without AWS credentials, as `npm run package` does.

A copy of infra/ and a fresh build live in a temporary folder, so the developer's build/ and
infra/.serverless/ are left alone. The layer is built for this machine's architecture and, when
a python3.12 or python3.13 interpreter is on the machine, for that runtime: then the zips are
unpacked the way Lambda lays them out (/opt/python, /var/task) and each handler is imported by
the handler string in the template, in a clean interpreter that sees nothing of the repo.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cfnlint
import pytest

ROOT = Path(__file__).resolve().parent.parent
SLS = ROOT / "node_modules" / ".bin" / "serverless"
RUNTIMES = ("python3.12", "python3.13")
# What the Lambda Python runtime provides (scripts/build_layers.py leaves them out).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py")
# IAM's service authorization data, as cfn-lint ships it (generated from AWS's reference):
# service -> {"Actions": {action (lower case): {"Resources": [resource types]}}}.
IAM_ACTIONS = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
# Actions the reference says take a resource, that AWS nonetheless documents as working only on "*".
STAR_ONLY: dict[str, str] = {}
BASELINE_ACTIONS = {
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
}
KMS_KEY = "arn:aws:kms:us-east-1:111122223333:key/0b6b3a8e-1c1f-4c63-9d0b-5f0f8a1e2d3c"
TOKEN_KEY = "arn:aws:kms:us-east-1:111122223333:key/5c1e2b7a-0d3f-4e8b-9a6c-7f2d1e0b3a4c"
SPLUNK = "splunkUrl=https://splunk.example.com:8088"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:hec-token-AbCdEf"
STACK_KEY = "arn:aws:kms:us-east-1:111122223333:key/9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
SECURITY_GROUP = "sg-0123456789abcdef0"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"  # scripts/check_deploy.sh installs it
VARIANTS: dict[str, list[str]] = {  # as in scripts/check_deploy.sh, which lints each
    "default": ["trailBucket=example-trail"],
    "s3-all-options": [
        "trailBucket=example-org-trail",
        "trailPrefix=cloudtrail",
        "orgId=o-exampleorg1",
        "trailBucketAccount=111122223333",
        "trigger=s3",
        f"trailKmsKeyArn={KMS_KEY}",
        SPLUNK,
        "splunkSecret=cloudtrail-anomaly/splunk-hec-token",
        f"splunkTokenKmsKeyArn={TOKEN_KEY}",
        "splunkIndex=security",
        "splunkMinSeverity=medium",
        "enrichOrganizations=true",
        "enrichmentRoleName=CloudTrailAnomalyReadOnly",
        "alarmEmail=security@example.com",
        "reservedConcurrency=20",
        f"kmsKeyArn={STACK_KEY}",
        f"subnetIds={','.join(SUBNETS)}",
        f"securityGroupIds={SECURITY_GROUP}",
        "accessLogsBucket=example-access-logs",
    ],
    "sqs-secured": [
        "trailBucket=example-trail",
        f"kmsKeyArn={STACK_KEY}",
        f"subnetIds={SUBNETS[0]}",
        f"securityGroupIds={SECURITY_GROUP}",
        "accessLogsBucket=example-access-logs",
        "trailAccounts=111122223333,444455556666",
        "enrichmentRoleName=CloudTrailAnomalyReadOnly",
    ],
    "sqs-eventbridge": [
        "trailBucket=example-trail",
        "eventBridge=true",
        "maximumConcurrency=5",
        SPLUNK,
        "splunkParameter=/cloudtrail-anomaly/hec-token",
    ],
    "sqs-secret-arn": [
        "trailBucket=example-trail",
        SPLUNK,
        f"splunkSecret={SECRET_ARN}",
        "reservedConcurrency=off",
        "reconcileReservedConcurrency=off",
    ],
}


def offline_env(**extra: str) -> dict[str, str]:
    """This environment without any AWS credentials or profile: packaging must not need them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def interpreter(runtime: str) -> str | None:
    """A Python of the runtime's version on this machine (pyenv's or on PATH), or None."""
    version = runtime.removeprefix("python")
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = [str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python{version}"))]
    on_path = shutil.which(f"python{version}")
    for candidate in [*found, *([on_path] if on_path else [])]:
        if subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


@dataclass
class Deployment:
    root: Path  # holds infra/ (a copy) and build/
    architecture: str
    runtime: str
    python: str | None  # an interpreter that can import this build, if the machine has one
    templates: dict[str, dict[str, Any]]

    @property
    def build(self) -> Path:
        return self.root / "build"

    def package(self, params: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        command = [str(SLS), "package", "--region", "us-east-1", *(f"--param={p}" for p in params)]
        return subprocess.run(
            command,
            cwd=self.root / "infra",
            env=offline_env(
                LAMBDA_ARCHITECTURE=env.get("arch", self.architecture),
                LAMBDA_RUNTIME=env.get("runtime", self.runtime),
            ),
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the deployment is packaged by osls (npm)")
    if not SLS.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    root = tmp_path_factory.mktemp("deployment")
    shutil.copytree(ROOT / "infra", root / "infra", ignore=shutil.ignore_patterns(".serverless"))
    (root / "layers").symlink_to(ROOT / "layers")  # settings.js reads the core's names.json
    architecture = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine(), "arm64"
    )
    runtime, python = next(
        ((r, p) for r in RUNTIMES if (p := interpreter(r))), ("python3.12", None)
    )
    if python is None:
        architecture = "arm64"  # the default build; nothing here can import it anyway
    target = ["--arch", architecture, "--runtime", runtime, "--out", str(root / "build")]
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_layers.py"), *target],
        check=True,
        capture_output=True,
    )
    d = Deployment(root, architecture, runtime, python, {})
    for variant, params in VARIANTS.items():
        result = d.package(params)
        assert result.returncode == 0, result.stdout + result.stderr
        template = root / "infra" / ".serverless" / "cloudformation-template-update-stack.json"
        d.templates[variant] = json.loads(template.read_text())
    return d


@pytest.fixture
def template(deployment: Deployment) -> dict[str, Any]:
    return deployment.templates["default"]


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    props = template["Resources"][role]["Properties"]
    return [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statement(template: dict[str, Any], role: str, sid: str) -> dict[str, Any]:
    found = [s for s in statements(template, role) if s.get("Sid") == sid]
    assert len(found) == 1, f"{role} has {len(found)} statements {sid}"
    return found[0]


def sids(template: dict[str, Any], role: str) -> set[str]:
    return {s.get("Sid", "") for s in statements(template, role)}


# --- functions and triggers ---


def test_two_functions_on_the_core_layer_with_their_own_roles(deployment: Deployment) -> None:
    template = deployment.templates["default"]
    functions = resources(template, "AWS::Lambda::Function")
    assert set(functions) == {"RealtimeLambdaFunction", "ReconcileLambdaFunction"}
    handlers = {k: f["Properties"]["Handler"] for k, f in functions.items()}
    assert handlers == {
        "RealtimeLambdaFunction": "functions/realtime/handler.handler",
        "ReconcileLambdaFunction": "functions/reconcile/handler.handler",
    }
    for name, role in [("Realtime", "RealtimeRole"), ("Reconcile", "ReconcileRole")]:
        props = functions[f"{name}LambdaFunction"]["Properties"]
        assert props["Runtime"] == deployment.runtime
        assert props["Architectures"] == [deployment.architecture]
        assert props["Layers"] == [{"Ref": "CoreLambdaLayer"}]
        assert props["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Environment"]["Variables"]["CLOUDTRAIL_ANOMALY_CONFIG"] == (
            "/var/task/config.toml"
        )
    layer = template["Resources"]["CoreLambdaLayer"]["Properties"]
    assert layer["CompatibleRuntimes"] == [deployment.runtime]
    assert layer["CompatibleArchitectures"] == [deployment.architecture]
    # One run of the reconciliation at a time; the real-time function is capped at 10.
    assert functions["ReconcileLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1
    assert functions["RealtimeLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] == 10
    # Accounts limited to 10 concurrent executions can reserve nothing: "off".
    for function in ("RealtimeLambdaFunction", "ReconcileLambdaFunction"):
        off = deployment.templates["sqs-secret-arn"]["Resources"][function]
        assert "ReservedConcurrentExecutions" not in off["Properties"]


def test_realtime_reads_the_queue_with_partial_batch_failures(template: dict[str, Any]) -> None:
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["NotificationQueue", "Arn"]}
    assert props["FunctionName"] == {"Fn::GetAtt": ["RealtimeLambdaFunction", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # One SQS batch shares the ledger's reads and writes (25 objects a request): 100 by default.
    assert props["BatchSize"] == 100
    assert props["MaximumBatchingWindowInSeconds"] == 10
    # The poller never invokes more than the function may run: a throttled message counts as
    # received and would reach the dead-letter queue.
    assert props["ScalingConfig"] == {"MaximumConcurrency": 10}


def test_queue_visibility_covers_six_timeouts_and_failures_go_to_the_dlq(
    template: dict[str, Any],
) -> None:
    queue = template["Resources"]["NotificationQueue"]["Properties"]
    dlq = template["Resources"]["NotificationDeadLetterQueue"]["Properties"]
    timeout = template["Resources"]["RealtimeLambdaFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    # Messages not started with 30 s left are handed back, well before the timeout cuts them off.
    env = template["Resources"]["RealtimeLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MIN_REMAINING_SECONDS"] == "30"
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] and dlq["SqsManagedSseEnabled"]
    assert "KmsMasterKeyId" not in queue and "KmsMasterKeyId" not in dlq


def test_only_the_trail_bucket_may_send_to_the_queue(template: dict[str, Any]) -> None:
    policy = template["Resources"]["NotificationQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "NotificationQueue"}]
    (allow,) = policy["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::example-trail"}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_eventbridge_routes_the_buckets_new_objects_to_the_queue(
    deployment: Deployment,
) -> None:
    template = deployment.templates["sqs-eventbridge"]
    rule = template["Resources"]["TrailObjectCreatedRule"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": ["example-trail"]},
            "object": {"key": [{"prefix": "AWSLogs/"}]},
        },
    }
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["NotificationQueue", "Arn"]}
    policy = template["Resources"]["NotificationQueuePolicy"]["Properties"]["PolicyDocument"]
    by_principal = {s["Principal"]["Service"]: s for s in policy["Statement"]}
    assert by_principal["events.amazonaws.com"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["TrailObjectCreatedRule", "Arn"]}}
    }
    assert "s3.amazonaws.com" in by_principal
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_direct_s3_trigger_on_the_existing_bucket(deployment: Deployment) -> None:
    template = deployment.templates["s3-all-options"]
    assert not resources(template, "AWS::Lambda::EventSourceMapping")
    assert "NotificationQueuePolicy" not in template["Resources"]
    (custom,) = resources(template, "Custom::S3").values()
    assert custom["Properties"]["BucketName"] == "example-org-trail"
    assert custom["Properties"]["BucketConfigs"] == [
        {
            "Event": "s3:ObjectCreated:*",
            "Rules": [{"Prefix": "cloudtrail/AWSLogs/o-exampleorg1/"}, {"Suffix": ".json.gz"}],
        }
    ]
    # Asynchronous invocations: what fails every retry goes to the dead-letter queue.
    invoke = template["Resources"]["RealtimeLambdaEvConf"]["Properties"]
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]
    }
    realtime = template["Resources"]["RealtimeLambdaFunction"]["Properties"]
    assert realtime["ReservedConcurrentExecutions"] == 20


def test_reconcile_runs_hourly_with_the_trail_and_athena_settings(
    deployment: Deployment,
) -> None:
    template = deployment.templates["s3-all-options"]
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["ReconcileLambdaFunction", "Arn"]}
    env = template["Resources"]["ReconcileLambdaFunction"]["Properties"]["Environment"]
    variables = env["Variables"]
    assert variables["TRAIL_BUCKET"] == "example-org-trail"
    assert variables["TRAIL_PREFIX"] == "cloudtrail"
    assert variables["TRAIL_ORG_ID"] == "o-exampleorg1"
    assert variables["ATHENA_WORKGROUP"] == {"Ref": "AthenaWorkGroup"}
    assert variables["BASELINE_TABLE"] == {"Ref": "BaselineTable"}
    retries = template["Resources"]["ReconcileLambdaEvConf"]["Properties"]
    assert retries["MaximumRetryAttempts"] == 2


# --- data, Athena, alarms, logs ---


def test_baseline_table(template: dict[str, Any]) -> None:
    table = template["Resources"]["BaselineTable"]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_athena_workgroup_and_results_bucket(template: dict[str, Any]) -> None:
    workgroup = template["Resources"]["AthenaWorkGroup"]["Properties"]
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"] == {
        "OutputLocation": {"Fn::Sub": "s3://${AthenaResultsBucket}/results/"},
        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
    }
    assert config["BytesScannedCutoffPerQuery"] > 0
    bucket = template["Resources"]["AthenaResultsBucket"]["Properties"]
    (sse,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rule, markers = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == 7
    # Versioned: what expires or is overwritten is gone a day later, with its delete marker.
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert markers == {
        "Id": "remove-expired-delete-markers",
        "Status": "Enabled",
        "ExpiredObjectDeleteMarker": True,
    }
    assert "LoggingConfiguration" not in bucket


def test_alarms(deployment: Deployment) -> None:
    template = deployment.templates["s3-all-options"]
    alarms = {
        name: a["Properties"] for name, a in resources(template, "AWS::CloudWatch::Alarm").items()
    }
    metrics = {name: (a["Namespace"], a["MetricName"]) for name, a in alarms.items()}
    assert metrics == {
        "DeadLetterQueueAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "NotificationBacklogAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        "RealtimeErrorsAlarm": ("AWS/Lambda", "Errors"),
        "ReconcileErrorsAlarm": ("AWS/Lambda", "Errors"),
        "PendingAlertsAlarm": ("CloudTrailAnomaly", "alerts_pending_oldest_age_seconds"),
        "SinkConfigurationAlarm": ("CloudTrailAnomaly", "sink_configuration_errors"),
        "MissedFilesAlarm": ("CloudTrailAnomaly", "files_missed"),
    }
    dlq = alarms["DeadLetterQueueAlarm"]
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotificationDeadLetterQueue", "QueueName"]}}
    ]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    # Custom metrics carry powertools' "service" dimension: each function's own service name.
    services = {
        name: a["Dimensions"][0]["Value"]
        for name, a in alarms.items()
        if a["Namespace"] == "CloudTrailAnomaly"
    }
    env = {
        fn: template["Resources"][f"{fn}LambdaFunction"]["Properties"]["Environment"]["Variables"]
        for fn in ("Realtime", "Reconcile")
    }
    assert services["PendingAlertsAlarm"] == env["Realtime"]["POWERTOOLS_SERVICE_NAME"]
    assert services["MissedFilesAlarm"] == env["Reconcile"]["POWERTOOLS_SERVICE_NAME"]
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
    subscription = template["Resources"]["AlarmEmailSubscription"]["Properties"]
    assert subscription["Endpoint"] == "security@example.com"


def test_log_retention(deployment: Deployment) -> None:
    for template in deployment.templates.values():
        groups = resources(template, "AWS::Logs::LogGroup")
        assert set(groups) == {"RealtimeLogGroup", "ReconcileLogGroup"}
        assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {30}


# --- least privilege ---


@functools.cache
def iam_reference() -> dict[str, Any]:
    return dict(json.loads(IAM_ACTIONS.read_text()))


def resource_types(action: str) -> list[str]:
    """The resource types IAM's reference lists for an action ([] when it takes only "*")."""
    service, name = action.split(":")
    actions = iam_reference()[service]["Actions"]
    assert name.lower() in actions, f"{action} is not in IAM's reference"
    return list(actions[name.lower()].get("Resources", []))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_wildcard_actions_and_resources_scoped(deployment: Deployment, variant: str) -> None:
    """No statement allows on "*" an action that IAM can scope to a resource."""
    template = deployment.templates[variant]
    roles = resources(template, "AWS::IAM::Role")
    assert {"RealtimeRole", "ReconcileRole"} <= set(roles)
    for name in roles:
        for s in statements(template, name):
            actions = as_list(s["Action"])
            assert s["Effect"] == "Allow"
            assert not [a for a in actions if "*" in a], f"{name}: {actions}"
            if name not in ("RealtimeRole", "ReconcileRole"):
                continue  # osls's own custom-resource role (trigger=s3): actions checked only
            for resource in as_list(s["Resource"]):
                if resource == "*":
                    scoped = [a for a in actions if resource_types(a) and a not in STAR_ONLY]
                    assert not scoped, f"{name} {s.get('Sid')}: {scoped} take a resource, not *"
                else:
                    assert resource  # a literal ARN or an intrinsic naming one
                    for action in actions:
                        assert resource_types(action), f"{action} takes no resource, only *"


def test_the_iam_reference_knows_every_action_we_allow(deployment: Deployment) -> None:
    """The check above is only as good as its data: every action it meets is in it, and the
    actions we allow on "*" really have no resource type there."""
    assert resource_types("xray:PutTraceSegments") == []
    assert resource_types("organizations:ListAccounts") == []
    assert resource_types("ec2:DescribeNetworkInterfaces") == []
    assert resource_types("sts:AssumeRole") == ["role"]
    assert resource_types("dynamodb:GetItem") == ["table"]


def test_realtime_role(template: dict[str, Any]) -> None:
    assert sids(template, "RealtimeRole") == {
        "OwnLogs",
        "XRayTraces",
        "Baseline",
        "TrailObjects",
        "TrailMissingObjects",
        "NotificationQueue",
    }
    # A deleted object must answer 404 (skipped), not 403 (retried into the DLQ): the GET's
    # implicit ListBucket check has no s3:prefix, so the condition is an IfExists one.
    missing = statement(template, "RealtimeRole", "TrailMissingObjects")
    assert missing["Action"] == ["s3:ListBucket"]
    assert missing["Condition"] == {"StringLikeIfExists": {"s3:prefix": ["AWSLogs/*"]}}
    logs = statement(template, "RealtimeRole", "OwnLogs")
    assert logs["Resource"] == {"Fn::GetAtt": ["RealtimeLogGroup", "Arn"]}
    baseline = statement(template, "RealtimeRole", "Baseline")
    assert set(baseline["Action"]) == BASELINE_ACTIONS
    assert baseline["Resource"] == {"Fn::GetAtt": ["BaselineTable", "Arn"]}
    objects = statement(template, "RealtimeRole", "TrailObjects")
    assert objects["Action"] == ["s3:GetObject"]
    assert objects["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::example-trail/AWSLogs/*"}
    queue = statement(template, "RealtimeRole", "NotificationQueue")
    assert set(queue["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    assert queue["Resource"] == {"Fn::GetAtt": ["NotificationQueue", "Arn"]}


def test_the_alarm_topic_is_not_encrypted_with_a_key_cloudwatch_cannot_use(
    template: dict[str, Any],
) -> None:
    topic = template["Resources"]["AlarmTopic"]["Properties"]
    assert topic.get("KmsMasterKeyId") != "alias/aws/sns"


def test_reconcile_role(template: dict[str, Any]) -> None:
    assert sids(template, "ReconcileRole") == {
        "OwnLogs",
        "XRayTraces",
        "Baseline",
        "TrailObjects",
        "TrailListing",
        "TrailBucketLocation",
        "AthenaQueries",
        "AthenaCatalog",
        "AthenaDefaultDatabase",
        "AthenaResultObjects",
        "AthenaResultBucket",
    }
    listing = statement(template, "ReconcileRole", "TrailListing")
    assert listing["Action"] == ["s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["AWSLogs/*"]}}
    athena = statement(template, "ReconcileRole", "AthenaQueries")
    assert athena["Resource"]["Fn::Sub"].endswith(":workgroup/${AthenaWorkGroup}")
    catalog = statement(template, "ReconcileRole", "AthenaCatalog")
    assert [r["Fn::Sub"].rsplit(":", 1)[1] for r in catalog["Resource"]] == [
        "catalog",
        "database/cloudtrail_anomaly",
        "table/cloudtrail_anomaly/cloudtrail",
    ]
    results = statement(template, "ReconcileRole", "AthenaResultObjects")
    assert results["Resource"] == {"Fn::Sub": "${AthenaResultsBucket.Arn}/*"}


def test_optional_statements_appear_only_when_asked_for(deployment: Deployment) -> None:
    full = deployment.templates["s3-all-options"]
    optional = {"TrailKey", "SplunkToken", "SplunkTokenKey", "AccountNames", "EnrichmentRoles"}
    for role in ("RealtimeRole", "ReconcileRole"):
        assert not optional & sids(deployment.templates["default"], role)
        assert optional <= sids(full, role)
        assert statement(full, role, "TrailKey") == {
            "Sid": "TrailKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": KMS_KEY,
        }
        secret = statement(full, role, "SplunkToken")
        assert secret["Action"] == ["secretsmanager:GetSecretValue"]
        assert secret["Resource"]["Fn::Sub"].endswith(
            ":secret:cloudtrail-anomaly/splunk-hec-token-??????"
        )
        assert statement(full, role, "SplunkTokenKey")["Resource"] == TOKEN_KEY
        # Any account's role of that name, but only in the organization's accounts.
        assume = statement(full, role, "EnrichmentRoles")
        assert assume["Action"] == ["sts:AssumeRole"]
        assert assume["Resource"] == {
            "Fn::Sub": "arn:${AWS::Partition}:iam::*:role/CloudTrailAnomalyReadOnly"
        }
        assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-exampleorg1"}}
        # An organization trail: only its own folder of the bucket is readable.
        objects = statement(full, role, "TrailObjects")
        assert objects["Resource"] == {
            "Fn::Sub": "arn:${AWS::Partition}:s3:::example-org-trail/cloudtrail/AWSLogs/o-exampleorg1/*"
        }
    # trigger=s3: no queue to read, only the dead-letter queue to send failures to.
    assert "NotificationQueue" not in sids(full, "RealtimeRole")
    dlq = statement(full, "RealtimeRole", "FailedInvocations")
    assert dlq["Action"] == ["sqs:SendMessage"]


def test_splunk_token_by_secret_arn_or_ssm_parameter(deployment: Deployment) -> None:
    by_arn = deployment.templates["sqs-secret-arn"]
    assert statement(by_arn, "RealtimeRole", "SplunkToken")["Resource"] == SECRET_ARN
    by_parameter = statement(
        deployment.templates["sqs-eventbridge"], "ReconcileRole", "SplunkToken"
    )
    assert by_parameter == {
        "Sid": "SplunkToken",
        "Effect": "Allow",
        "Action": ["ssm:GetParameter"],
        "Resource": {
            "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
            ":parameter/cloudtrail-anomaly/hec-token"
        },
    }
    for variant, secret, parameter in [
        ("sqs-secret-arn", SECRET_ARN, ""),
        ("sqs-eventbridge", "", "/cloudtrail-anomaly/hec-token"),
        ("s3-all-options", "cloudtrail-anomaly/splunk-hec-token", ""),
    ]:
        for function in ("Realtime", "Reconcile"):
            resource = deployment.templates[variant]["Resources"][f"{function}LambdaFunction"]
            env = resource["Properties"]["Environment"]["Variables"]
            assert env["SPLUNK_HEC_URL"] == "https://splunk.example.com:8088"
            assert env["SPLUNK_HEC_TOKEN_SECRET"] == secret
            assert env["SPLUNK_HEC_TOKEN_PARAMETER"] == parameter
    full = deployment.templates["s3-all-options"]["Resources"]["RealtimeLambdaFunction"]
    env = full["Properties"]["Environment"]["Variables"]
    assert (env["SPLUNK_HEC_INDEX"], env["SPLUNK_MIN_SEVERITY"]) == ("security", "medium")


def test_a_build_for_another_architecture_fails_the_package(deployment: Deployment) -> None:
    """(Bad parameter values: tests/test_deploy_params.py.)"""
    other = "arm64" if deployment.architecture == "x86_64" else "x86_64"
    result = deployment.package(["trailBucket=b-1"], arch=other)
    assert result.returncode != 0
    assert "check-build: build/ holds a" in result.stdout + result.stderr


# --- the artifacts ---


def locked_layer_pins() -> dict[str, str]:
    """name -> version of every pin in requirements/layer.txt (exported from uv.lock)."""
    pins = {}
    for line in (ROOT / "requirements" / "layer.txt").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ", 1)[0].split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_layer_holds_exactly_the_locked_versions(deployment: Deployment) -> None:
    """deployed == tested: every distribution in the layer is the one the lock pins, and the
    lock's pins for the layer are the ones this test run imports."""
    from importlib import metadata

    manifest = json.loads((deployment.build / "manifest.json").read_text())
    pins = locked_layer_pins()
    assert manifest["distributions"] == pins
    assert {"boto3", "botocore", "aws-lambda-powertools", "msgspec", "isal", "orjson"} <= set(pins)
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name}: the venv is not the lock's"
    assert manifest["lock_sha256"] == hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest()
    assert manifest["version"] == metadata.version("cloudtrail-anomaly")


def test_layer_holds_the_core_and_its_dependencies(deployment: Deployment) -> None:
    manifest = json.loads((deployment.build / "manifest.json").read_text())
    assert (manifest["architecture"], manifest["runtime"]) == (
        deployment.architecture,
        deployment.runtime,
    )
    with zipfile.ZipFile(deployment.build / "layer-core.zip") as zf:
        names = zf.namelist()
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    top = {n.split("/")[1] for n in names}
    assert all(n.startswith("python/") for n in names)
    assert "cloudtrail_anomaly" in top
    assert {"boto3", "botocore"} <= top
    assert "bin" not in top
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[deployment.architecture]
    abi = deployment.runtime.removeprefix("python").replace(".", "")
    binaries = [n for n in names if n.endswith(".so")]
    assert binaries
    assert all(f"cpython-{abi}-{machine}-linux-gnu" in n for n in binaries), binaries
    for function in ("realtime", "reconcile"):
        with zipfile.ZipFile(deployment.build / f"function-{function}.zip") as zf:
            sources = {n for n in zf.namelist() if not n.endswith(".pyc")}
        assert sources == {f"functions/{function}/handler.py", "config.toml"}


def unpack_like_lambda(deployment: Deployment, zip_name: str, where: Path) -> dict[str, Path]:
    """/opt (the layer), /var/task (the function) and /var/runtime (boto3 & co, from this
    venv: the runtime's own copy) under `where`."""
    opt, task, runtime = where / "opt", where / "var" / "task", where / "var" / "runtime"
    with zipfile.ZipFile(deployment.build / "layer-core.zip") as zf:
        zf.extractall(opt)
    with zipfile.ZipFile(deployment.build / zip_name) as zf:
        zf.extractall(task)
    runtime.mkdir(parents=True)
    import boto3

    site = Path(boto3.__file__).parent.parent
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(site / name)
    return {"opt": opt / "python", "task": task, "runtime": runtime}


IMPORT_HANDLER = """
import importlib, json, sys
paths, handler, allowed = json.loads(sys.argv[1])
sys.path[:0] = paths
module, _, attr = handler.rpartition(".")
loaded = importlib.import_module(module.replace("/", "."))
assert callable(getattr(loaded, attr)), handler
import cloudtrail_anomaly, pkgutil
# Every module of the core, not only what a cold start imports (the sinks' requests, say).
for info in pkgutil.walk_packages(cloudtrail_anomaly.__path__, "cloudtrail_anomaly."):
    importlib.import_module(info.name)
origins = {
    name: getattr(m, "__file__", None) or ""
    for name, m in list(sys.modules.items())
}
strays = sorted(
    f"{name}: {origin}" for name, origin in origins.items()
    if origin and not origin.startswith(tuple(allowed))
)
print(json.dumps({"handler": loaded.__file__, "core": cloudtrail_anomaly.__file__,
                  "strays": strays}))
"""


def lambda_environment(
    deployment: Deployment, function: str, paths: dict[str, Path]
) -> dict[str, str]:
    """The function's environment from the template (references as sample values), and what
    Lambda itself sets."""
    props = deployment.templates["default"]["Resources"][f"{function}LambdaFunction"]
    variables = props["Properties"]["Environment"]["Variables"]
    refs = {
        "BaselineTable": "cloudtrail-anomaly-BaselineTable-1",
        "AthenaWorkGroup": "wg",
        "AWS::AccountId": "123456789012",
    }
    env = {
        name: refs[value["Ref"]] if isinstance(value, dict) else str(value)
        for name, value in variables.items()
    }
    env["CLOUDTRAIL_ANOMALY_CONFIG"] = str(paths["task"] / "config.toml")  # /var/task/…
    env.update(
        PATH=os.environ.get("PATH", ""),
        LANG="C.UTF-8",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_LAMBDA_FUNCTION_NAME=props["Properties"]["FunctionName"],
        LAMBDA_TASK_ROOT=str(paths["task"]),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.mark.parametrize("function", ["Realtime", "Reconcile"])
def test_handler_imports_from_the_lambda_layout(
    deployment: Deployment, function: str, tmp_path: Path
) -> None:
    if deployment.python is None:
        pytest.skip(f"no {'/'.join(RUNTIMES)} interpreter on this machine to import the build")
    props = deployment.templates["default"]["Resources"][f"{function}LambdaFunction"]
    handler = props["Properties"]["Handler"]
    paths = unpack_like_lambda(deployment, f"function-{function.lower()}.zip", tmp_path)
    stdlib = subprocess.run(
        [deployment.python, "-I", "-S", "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    order = [str(paths["task"]), str(paths["opt"]), str(paths["runtime"])]  # Lambda's order
    allowed = [*order, stdlib]
    result = subprocess.run(
        [
            deployment.python,
            "-I",
            "-S",
            "-c",
            IMPORT_HANDLER,
            json.dumps([order, handler, allowed]),
        ],
        cwd=tmp_path,
        env=lambda_environment(deployment, function, paths),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["handler"] == str(paths["task"] / "functions" / function.lower() / "handler.py")
    assert found["core"] == str(paths["opt"] / "cloudtrail_anomaly" / "__init__.py")
    assert found["strays"] == []


# --- security options and scanners (docs/security.md) ---


def function_props(template: dict[str, Any], function: str) -> dict[str, Any]:
    return dict(template["Resources"][f"{function}LambdaFunction"]["Properties"])


@pytest.mark.parametrize("variant", ["s3-all-options", "sqs-secured"])
def test_the_stack_key_encrypts_the_table_queues_logs_environment_and_athena_results(
    deployment: Deployment, variant: str
) -> None:
    template = deployment.templates[variant]
    res = template["Resources"]
    assert res["BaselineTable"]["Properties"]["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": STACK_KEY,
    }
    for queue in ("NotificationQueue", "NotificationDeadLetterQueue"):
        props = res[queue]["Properties"]
        assert props["KmsMasterKeyId"] == STACK_KEY
        assert "SqsManagedSseEnabled" not in props  # exclusive with a KMS key
    for group in ("RealtimeLogGroup", "ReconcileLogGroup"):
        assert res[group]["Properties"]["KmsKeyId"] == STACK_KEY
    for function in ("Realtime", "Reconcile"):
        assert function_props(template, function)["KmsKeyArn"] == STACK_KEY
    config = res["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": STACK_KEY,
    }
    (sse,) = res["AthenaResultsBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert sse == {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": STACK_KEY},
        "BucketKeyEnabled": True,
    }
    # The roles may use the key for what they do with their own credentials: read the queue
    # (and send failures to the DLQ with trigger=s3), write and read Athena's results.
    realtime = statement(template, "RealtimeRole", "StackKey")
    wanted = ["kms:Decrypt"] if variant == "sqs-secured" else ["kms:Decrypt", "kms:GenerateDataKey"]
    assert (realtime["Action"], realtime["Resource"]) == (wanted, STACK_KEY)
    reconcile = statement(template, "ReconcileRole", "StackKey")
    assert (reconcile["Action"], reconcile["Resource"]) == (
        ["kms:Decrypt", "kms:GenerateDataKey"],
        STACK_KEY,
    )


def test_without_the_stack_key_nothing_names_one(template: dict[str, Any]) -> None:
    res = template["Resources"]
    assert res["BaselineTable"]["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    for function in ("Realtime", "Reconcile"):
        assert "KmsKeyArn" not in function_props(template, function)
        assert "StackKey" not in sids(template, f"{function}Role")
        assert "KmsKeyId" not in res[f"{function}LogGroup"]["Properties"]


@pytest.mark.parametrize("variant", ["s3-all-options", "sqs-secured"])
def test_vpc_option(deployment: Deployment, variant: str) -> None:
    template = deployment.templates[variant]
    subnets = SUBNETS if variant == "s3-all-options" else SUBNETS[:1]
    for function in ("Realtime", "Reconcile"):
        assert function_props(template, function)["VpcConfig"] == {
            "SubnetIds": subnets,
            "SecurityGroupIds": [SECURITY_GROUP],
        }
        role = f"{function}Role"
        describe = statement(template, role, "VpcDescribe")
        assert describe["Action"] == ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
        create = statement(template, role, "VpcNetworkInterfaces")
        assert create["Action"] == ["ec2:CreateNetworkInterface"]
        ec2 = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:"
        assert [r["Fn::Sub"] for r in create["Resource"]] == [
            f"{ec2}network-interface/*",
            *(f"{ec2}subnet/{s}" for s in subnets),
            f"{ec2}security-group/{SECURITY_GROUP}",
        ]
        upkeep = statement(template, role, "VpcNetworkInterfaceUpkeep")
        assert upkeep["Resource"] == {"Fn::Sub": f"{ec2}network-interface/*"}
    default = deployment.templates["default"]
    assert "VpcConfig" not in function_props(default, "Realtime")
    assert not {"VpcDescribe", "VpcNetworkInterfaces"} & sids(default, "RealtimeRole")


def test_access_logs_go_to_the_named_bucket(deployment: Deployment) -> None:
    res = deployment.templates["sqs-secured"]["Resources"]
    for bucket, what in [
        ("AthenaResultsBucket", "athena-results"),
        ("ServerlessDeploymentBucket", "deployment"),
    ]:
        assert res[bucket]["Properties"]["LoggingConfiguration"] == {
            "DestinationBucketName": "example-access-logs",
            "LogFilePrefix": f"cloudtrail-anomaly-dev/{what}/",
        }
    default = deployment.templates["default"]["Resources"]
    assert "LoggingConfiguration" not in default["ServerlessDeploymentBucket"]["Properties"]


def test_the_deployment_bucket_is_versioned_and_forgets_replaced_artifacts(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["ServerlessDeploymentBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    replaced, _markers = bucket["LifecycleConfiguration"]["Rules"]
    assert replaced["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


def test_enrichment_assumes_roles_only_in_the_listed_accounts(deployment: Deployment) -> None:
    template = deployment.templates["sqs-secured"]
    for role in ("RealtimeRole", "ReconcileRole"):
        assume = statement(template, role, "EnrichmentRoles")
        assert assume["Resource"] == [
            {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{account}:role/CloudTrailAnomalyReadOnly"}
            for account in ("111122223333", "444455556666")
        ]
        assert "Condition" not in assume


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_hec_token_is_never_in_a_functions_environment(
    deployment: Deployment, variant: str
) -> None:
    """Only where the token is kept: the secret's or parameter's name, never the token."""
    for function in ("Realtime", "Reconcile"):
        env = function_props(deployment.templates[variant], function)["Environment"]["Variables"]
        assert "SPLUNK_HEC_TOKEN" not in env
        assert {k for k in env if "TOKEN" in k} == {
            "SPLUNK_HEC_TOKEN_SECRET",
            "SPLUNK_HEC_TOKEN_PARAMETER",
        }


def test_every_template_passes_cfn_lint(deployment: Deployment, tmp_path: Path) -> None:
    paths = []
    for variant, template in deployment.templates.items():
        paths.append(tmp_path / f"{variant}.json")
        paths[-1].write_text(json.dumps(template))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--", *map(str, paths)],
        cwd=ROOT / "infra",  # infra/.cfnlintrc
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# What checkov 3.3 skips, by variant: (resource, check). Each skip's reason is in the template
# (Metadata.checkov.skip) and in docs/security.md.
UNMET_BY_DEFAULT = {
    ("RealtimeLambdaFunction", "CKV_AWS_116"),  # failures go to the queue's DLQ
    ("ReconcileLambdaFunction", "CKV_AWS_116"),  # the hourly event holds only its time
    ("RealtimeLambdaFunction", "CKV_AWS_117"),  # VPC: subnetIds/securityGroupIds
    ("ReconcileLambdaFunction", "CKV_AWS_117"),
    ("RealtimeLambdaFunction", "CKV_AWS_173"),  # kmsKeyArn
    ("ReconcileLambdaFunction", "CKV_AWS_173"),
    ("RealtimeLogGroup", "CKV_AWS_158"),
    ("ReconcileLogGroup", "CKV_AWS_158"),
    ("BaselineTable", "CKV_AWS_119"),
    ("NotificationQueue", "CKV_AWS_27"),
    ("NotificationDeadLetterQueue", "CKV_AWS_27"),
    ("AthenaResultsBucket", "CKV_AWS_18"),  # accessLogsBucket
    ("ServerlessDeploymentBucket", "CKV_AWS_18"),
    ("AlarmTopic", "CKV_AWS_26"),  # CloudWatch cannot use alias/aws/sns
}
ALWAYS = {
    ("RealtimeLambdaFunction", "CKV_AWS_116"),
    ("ReconcileLambdaFunction", "CKV_AWS_116"),
    ("AlarmTopic", "CKV_AWS_26"),
}
CUSTOM_RESOURCE = "CustomDashresourceDashexistingDashs3LambdaFunction"
CHECKOV_SKIPS = {
    "default": UNMET_BY_DEFAULT,
    "sqs-eventbridge": UNMET_BY_DEFAULT,
    "sqs-secret-arn": UNMET_BY_DEFAULT
    | {("RealtimeLambdaFunction", "CKV_AWS_115"), ("ReconcileLambdaFunction", "CKV_AWS_115")},
    "sqs-secured": ALWAYS,
    "s3-all-options": ALWAYS
    | {(CUSTOM_RESOURCE, check) for check in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117")},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_checkov_finds_nothing_unexplained(
    deployment: Deployment, variant: str, tmp_path: Path
) -> None:
    if not CHECKOV.exists():
        pytest.skip("checkov is installed by scripts/check_deploy.sh (requirements/checkov.txt)")
    path = tmp_path / f"{variant}.json"
    path.write_text(json.dumps(deployment.templates[variant]))
    result = subprocess.run(
        [
            str(CHECKOV),
            "--compact",
            "--skip-download",
            "--framework",
            "cloudformation",
            "-o",
            "json",
            "-f",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    failed = [(c["resource"], c["check_id"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert result.returncode == 0, result.stderr
    skipped = report["results"]["skipped_checks"]
    assert {(c["resource"].split(".")[-1], c["check_id"]) for c in skipped} == CHECKOV_SKIPS[
        variant
    ]
    documented = (ROOT / "docs" / "security.md").read_text()
    for check in skipped:
        reason = check["check_result"]["suppress_comment"]
        assert len(reason) > 40, check  # a reason, not a placeholder
        assert check["check_id"] in documented

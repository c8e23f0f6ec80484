"""The stack as deployed, on moto: the harness for tests that run the handlers the way Lambda runs
them, with what the packaged CloudFormation template gives them, and nothing else.

- `packaged_stack()` builds the Lambda zips (scripts/build_layers.py) and packages
  infra/serverless.yml with osls for one set of parameters, offline, as `npm run package` does.
- `DeployedStack` creates that very template with moto's CloudFormation: the functions with
  their environment, the roles with their policies, the queues, the table, the schedule. What
  moto's CloudFormation does not create (the Athena workgroup) is created from the template's
  own properties. The trail bucket and the Splunk token's secret are the user's, created as the
  README tells the user to (the bucket notifies the stack's queue).
- `load(name)` is a cold start: `functions/<name>/handler.py` imported afresh under the
  function's environment as moto holds it, plus the variables Lambda itself sets. Two values are
  moved, because they cannot be the deployed ones here: the collector's address
  (`SPLUNK_HEC_URL`, a local HEC server with a self-signed certificate, which the process trusts
  through `REQUESTS_CA_BUNDLE`), and `/var/task`, where the function zip is unpacked. No part of
  the loaded function is replaced.
- Every AWS API call the handler code makes (at cold start and in invocations) is recorded by a
  hook on botocore's client and checked against the calling function's role in the template
  (`tests/iam_check.py`): a missing permission fails the test that exercised it.
- `Poller` is the SQS event source mapping: batches of the template's BatchSize, partial batch
  responses, failed messages made visible again, the queue's redrive policy to the DLQ.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.client
import botocore.exceptions
import pytest

from tests.hec_server import Faults, HecServer, self_signed_tls
from tests.iam_check import Call, denied_calls

ROOT = Path(__file__).resolve().parent.parent
SLS = ROOT / "node_modules" / ".bin" / "serverless"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
TOKEN = "4f1c2a9e-deployed-hec-token-7b3d"
SECRET_NAME = "cloudtrail-anomaly/hec"
STAGE = "harness"
ARTIFACTS = "harness-deployment-artifacts"
# Variables of ours a developer's shell may have: a function sees only its own.
OURS = (
    "SPLUNK_",
    "BASELINE_",
    "LEDGER_",
    "TRAIL_",
    "ATHENA_",
    "RECONCILE_",
    "POWERTOOLS_",
    "MAX_OBJECT_BYTES",
    "MIN_REMAINING",
    "CLOUDTRAIL_ANOMALY",
    "DYNAMODB_",
    "REQUESTS_CA_BUNDLE",
    "AWS_LAMBDA_",
)
_loads = itertools.count()


@dataclass
class Packaged:
    template: dict[str, Any]
    build: Path  # the zips and manifest.json
    params: dict[str, str]


def packaged_stack(out: Path, params: dict[str, str], build: Path | None = None) -> Packaged:
    """Build (unless `build` holds zips already) and package, offline; skips when node/npm
    are missing (osls runs on node)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the deployment is packaged by osls (npm)")
    if not SLS.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    shutil.copytree(ROOT / "infra", out / "infra", ignore=shutil.ignore_patterns(".serverless"))
    (out / "layers").symlink_to(ROOT / "layers")
    if build is not None:
        shutil.copytree(build, out / "build")
    build = out / "build"
    if not (build / "manifest.json").exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "build_layers.py"),
                "--out",
                str(build),
                "--precompile",
                "no",
            ],
            check=True,
            capture_output=True,
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    command = [str(SLS), "package", "--stage", STAGE, "--region", REGION]
    command += [f"--param={k}={v}" for k, v in params.items()]
    result = subprocess.run(
        command, cwd=out / "infra", env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads(
        (out / "infra" / ".serverless" / "cloudformation-template-update-stack.json").read_text()
    )
    return Packaged(template, build, params)


@dataclass
class FakeContext:
    """What Lambda passes: the remaining time decreases as the test says."""

    function_name: str
    memory_limit_in_mb: int
    remaining_ms: int = 170_000
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    function_version: str = "$LATEST"
    log_stream_name: str = "2026/12/05/[$LATEST]harness"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class ContainerCrash(BaseException):
    """The container died here (out of memory, timeout, a host failure): not an exception the
    code can catch and handle (it derives from BaseException), so nothing after it runs."""


@dataclass
class Fault:
    """Crash the container at the first call `when` matches: before it is made (`after=False`)
    or after it returned (`after=True`: the call took effect, its caller never learns)."""

    when: Callable[[str, str, dict[str, Any]], bool]  # (service, operation, params)
    after: bool = False
    fired: bool = False


class Recorder:
    """Records the API calls of handler code (not the harness's own) through botocore, crashes
    the container where a `Fault` says, and makes each call one at a time, as a service
    serializes conditional writes: threads (concurrent containers) interleave between calls."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.workgroups: dict[str, str] = {}
        self.faults: list[Fault] = []
        self._original = botocore.client.BaseClient._make_api_call
        self._serial = threading.RLock()
        self._local = threading.local()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Recorder]:
        recorder = self
        original = self._original

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            function = recorder.function
            if function is None:
                return original(client, operation, params)
            service = client.meta.service_model.service_name
            details = dict(params)
            if service == "athena" and "WorkGroup" not in details:
                details["_workgroup"] = recorder.workgroups.get(function, "primary")
            fault = next(
                (f for f in recorder.faults if not f.fired and f.when(service, operation, params)),
                None,
            )
            with recorder._serial:
                if fault is not None and not fault.after:
                    fault.fired = True
                    raise ContainerCrash(f"crashed before {service}:{operation}")
                try:
                    result = original(client, operation, params)
                except botocore.exceptions.ClientError as exc:
                    code = str(exc.response.get("Error", {}).get("Code", ""))
                    details["_error"] = code
                    raise
                finally:
                    recorder.calls.append(
                        Call(
                            function, service, operation, details, client.meta.region_name, ACCOUNT
                        )
                    )
                if fault is not None:
                    fault.fired = True
                    raise ContainerCrash(f"crashed after {service}:{operation}")
                return result

        botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    @property
    def function(self) -> str | None:
        """The function whose code runs on this thread, if any."""
        return getattr(self._local, "function", None)

    @contextlib.contextmanager
    def as_function(self, name: str) -> Iterator[None]:
        before = self.function
        self._local.function = name
        try:
            yield
        finally:
            self._local.function = before


@dataclass
class Function:
    """A loaded handler module: one container of a deployed function."""

    stack: DeployedStack
    name: str  # realtime | reconcile
    module: ModuleType
    function_name: str
    memory_mb: int

    def invoke(self, event: dict[str, Any], remaining_ms: int = 170_000) -> Any:
        context = FakeContext(self.function_name, self.memory_mb, remaining_ms)
        with self.stack.recorder.as_function(self.name), self.stack.environment(self.name):
            return self.module.handler(event, context)


@dataclass
class DeployedStack:
    packaged: Packaged
    workdir: Path
    monkeypatch: pytest.MonkeyPatch
    hec: HecServer
    ca_bundle: Path
    recorder: Recorder = field(default_factory=Recorder)
    outputs: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # function -> environment
    statements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    function_names: dict[str, str] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    _env_lock: threading.Lock = field(default_factory=threading.Lock)
    _env_depth: int = 0
    _saved_env: dict[str, str] = field(default_factory=dict)

    # -- creating it -----------------------------------------------------------------------
    def create(self) -> DeployedStack:
        template = json.loads(json.dumps(self.packaged.template))
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=ARTIFACTS)
        # The deployment bucket is osls's, filled before the stack's update: here, beforehand.
        template["Resources"].pop("ServerlessDeploymentBucket")
        template["Resources"].pop("ServerlessDeploymentBucketPolicy", None)
        template.get("Outputs", {}).pop("ServerlessDeploymentBucketName", None)
        # moto would run the SQS mapping itself, in Docker (there is none): `Poller` plays it,
        # from the packaged template's own properties.
        for logical, resource in list(template["Resources"].items()):
            if resource["Type"] == "AWS::Lambda::EventSourceMapping":
                del template["Resources"][logical]
        for resource in template["Resources"].values():
            props = resource.get("Properties", {})
            code = props.get("Code") or props.get("Content")
            if resource["Type"] in ("AWS::Lambda::Function", "AWS::Lambda::LayerVersion"):
                zip_name = code["S3Key"].rsplit("/", 1)[-1]
                body = (self.packaged.build / zip_name).read_bytes()
                s3.put_object(Bucket=ARTIFACTS, Key=code["S3Key"], Body=body)
                code["S3Bucket"] = ARTIFACTS
        template = self._name_the_workgroup(template)
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName=f"cloudtrail-anomaly-{STAGE}",
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        stack = cfn.describe_stacks(StackName=f"cloudtrail-anomaly-{STAGE}")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack
        for r in cfn.list_stack_resources(StackName=f"cloudtrail-anomaly-{STAGE}")[
            "StackResourceSummaries"
        ]:
            self.outputs[r["LogicalResourceId"]] = r["PhysicalResourceId"]
        self._create_what_moto_does_not(template)
        self._read_functions(template)
        self._create_the_users_side()
        return self

    @staticmethod
    def _name_the_workgroup(template: dict[str, Any]) -> dict[str, Any]:
        """moto's CloudFormation cannot create the workgroup, so its `Ref` (on AWS: the
        workgroup's name) would resolve to nothing: put the name in, as AWS would."""
        workgroup = template["Resources"].get("AthenaWorkGroup")
        if workgroup is None:
            return template
        name = workgroup["Properties"]["Name"]

        def resolve(node: Any) -> Any:
            if isinstance(node, dict):
                if node == {"Ref": "AthenaWorkGroup"}:
                    return name
                if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
                    return {"Fn::Sub": node["Fn::Sub"].replace("${AthenaWorkGroup}", name)}
                return {k: resolve(v) for k, v in node.items()}
            if isinstance(node, list):
                return [resolve(v) for v in node]
            return node

        resources = template["Resources"]
        template["Resources"] = {
            k: (v if k == "AthenaWorkGroup" else resolve(v)) for k, v in resources.items()
        }
        return template

    def _create_what_moto_does_not(self, template: dict[str, Any]) -> None:
        workgroup = template["Resources"].get("AthenaWorkGroup")
        if workgroup is None:
            return
        props = workgroup["Properties"]
        config = props["WorkGroupConfiguration"]
        output = config["ResultConfiguration"]["OutputLocation"]["Fn::Sub"].replace(
            "${AthenaResultsBucket}", self.outputs["AthenaResultsBucket"]
        )
        boto3.client("athena", region_name=REGION).create_work_group(
            Name=props["Name"],
            Description=props.get("Description", ""),
            Configuration={"ResultConfiguration": {"OutputLocation": output}},
        )
        self.outputs["AthenaWorkGroup"] = props["Name"]

    def _read_functions(self, template: dict[str, Any]) -> None:
        lam = boto3.client("lambda", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        for logical, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            name = logical.removesuffix("LambdaFunction").lower()
            physical = self.outputs[logical]
            config = lam.get_function_configuration(FunctionName=physical)
            env = dict(config.get("Environment", {}).get("Variables", {}))
            self.env[name] = env
            self.function_names[name] = physical
            self.memory[name] = int(config.get("MemorySize", 128))
            role = config["Role"].rsplit("/", 1)[-1]
            statements: list[dict[str, Any]] = []
            for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
                if isinstance(document, str):  # moto returns the document's repr
                    try:
                        document = json.loads(document)
                    except ValueError:
                        document = ast.literal_eval(document)
                statements += document["Statement"]
            self.statements[name] = statements
            self.recorder.workgroups[name] = env.get("ATHENA_WORKGROUP") or "primary"

    def _create_the_users_side(self) -> None:
        params = self.packaged.params
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=params["trailBucket"])
        queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=params["trailBucket"],
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": "AWSLogs/"},
                                    {"Name": "suffix", "Value": ".json.gz"},
                                ]
                            }
                        },
                    }
                ]
            },
        )
        if params.get("splunkSecret"):
            boto3.client("secretsmanager", region_name=REGION).create_secret(
                Name=params["splunkSecret"], SecretString=TOKEN
            )

    # -- what the stack holds ----------------------------------------------------------------
    @property
    def queue_url(self) -> str:
        return self.outputs["NotificationQueue"]

    @property
    def dlq_url(self) -> str:
        return self.outputs["NotificationDeadLetterQueue"]

    @property
    def table(self) -> str:
        return self.outputs["BaselineTable"]

    @property
    def bucket(self) -> str:
        return self.packaged.params["trailBucket"]

    def resource(self, logical: str) -> dict[str, Any]:
        return dict(self.packaged.template["Resources"][logical])

    # -- running the functions ---------------------------------------------------------------
    @contextlib.contextmanager
    def environment(self, name: str) -> Iterator[None]:
        """The function's environment, as Lambda sets it, for the duration of a call (calls of
        one function on several threads share it; the first sets it, the last restores)."""
        with self._env_lock:
            self._env_depth += 1
            if self._env_depth == 1:
                self._saved_env = dict(os.environ)
                self._set_environment(name)
        try:
            yield
        finally:
            with self._env_lock:
                self._env_depth -= 1
                if self._env_depth == 0:
                    os.environ.clear()
                    os.environ.update(self._saved_env)

    def _set_environment(self, name: str) -> None:
        for key in list(os.environ):
            if key.startswith(OURS):
                del os.environ[key]
        task = self.workdir / name / "var" / "task"
        env = dict(self.env[name])
        env["SPLUNK_HEC_URL"] = self.hec.url if env.get("SPLUNK_HEC_URL") else ""
        env["REQUESTS_CA_BUNDLE"] = str(self.ca_bundle)
        config = env.get("CLOUDTRAIL_ANOMALY_CONFIG", "")
        if config.startswith("/var/task/"):
            env["CLOUDTRAIL_ANOMALY_CONFIG"] = str(task / config.removeprefix("/var/task/"))
        env.update(
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_LAMBDA_FUNCTION_NAME=self.function_names[name],
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(self.memory[name]),
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            LAMBDA_TASK_ROOT=str(task),
            POWERTOOLS_TRACE_DISABLED="true",  # no X-Ray daemon here
        )
        os.environ.update(env)

    def load(self, name: str) -> Function:
        """A cold start of the deployed function `name` (a new container)."""
        task = self.workdir / name / "var" / "task"
        if not task.exists():
            with zipfile.ZipFile(self.packaged.build / f"function-{name}.zip") as zf:
                zf.extractall(task)
        handler = self.resource(f"{name.capitalize()}LambdaFunction")["Properties"]["Handler"]
        module_path, _, _ = handler.rpartition(".")
        path = task / f"{module_path}.py"
        n = next(_loads)
        spec = importlib.util.spec_from_file_location(f"deployed_{name}_handler_{n}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        with self.recorder.as_function(name), self.environment(name):
            spec.loader.exec_module(module)
        return Function(self, name, module, self.function_names[name], self.memory[name])

    def denied(self) -> list[str]:
        """Every recorded call the calling function's deployed role does not allow."""
        sm = boto3.client("secretsmanager", region_name=REGION)

        def secret_arn(name: str) -> str:
            return str(sm.describe_secret(SecretId=name)["ARN"])

        return denied_calls(self.recorder.calls, self.statements, secret_arn)

    def operations(self, function: str) -> set[str]:
        return {f"{c.service}:{c.operation}" for c in self.recorder.calls if c.function == function}


class Poller:
    """The SQS event source mapping of the real-time function, as the template configures it."""

    def __init__(self, stack: DeployedStack, function: Function | None = None) -> None:
        mapping = next(
            r["Properties"]
            for r in stack.packaged.template["Resources"].values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping"
        )
        self.stack = stack
        self.function = function  # the warm container; a crash discards it
        self.containers = 0 if function is None else 1
        self.crashes = 0
        self.batch_size = int(mapping["BatchSize"])
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.invocations: list[dict[str, Any]] = []

    def receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            got = self.sqs.receive_message(
                QueueUrl=self.stack.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            messages += got
        return messages

    def poll_once(self, remaining_ms: int = 170_000) -> dict[str, Any] | None:
        """One invocation with the next batch; None when the queue had nothing visible."""
        messages = self.receive()
        if not messages:
            return None
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }
        everything_failed = {
            "batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages]
        }
        if self.function is None:  # a new container: cold start
            self.function = self.stack.load("realtime")
            self.containers += 1
        try:
            response = self.function.invoke(event, remaining_ms)
        except ContainerCrash:
            self.crashes += 1
            self.function = None
            response = everything_failed
        except Exception:  # the handler raised: Lambda retries the whole batch
            response = everything_failed
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] in failed:  # visible again, as after the visibility timeout
                self.sqs.change_message_visibility(
                    QueueUrl=self.stack.queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                self.sqs.delete_message(
                    QueueUrl=self.stack.queue_url, ReceiptHandle=m["ReceiptHandle"]
                )
        self.invocations.append({"messages": len(messages), "failed": len(failed)})
        return dict(response)

    def drain(self, max_invocations: int = 50) -> int:
        """Invoke until the queue is empty (or `max_invocations`); returns the invocations."""
        for n in range(max_invocations):
            if self.poll_once() is None:
                return n
        return max_invocations

    def queue_depth(self, url: str | None = None) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.stack.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )


@contextlib.contextmanager
def deployed(
    packaged: Packaged, workdir: Path, monkeypatch: pytest.MonkeyPatch, faults: Faults | None = None
) -> Iterator[DeployedStack]:
    """The packaged stack created on moto, its HEC server running, the call recorder on."""
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    }.items():
        monkeypatch.setenv(key, value)
    tls, ca_bundle = self_signed_tls(workdir)
    with mock_aws(), HecServer(TOKEN, faults, tls=tls) as hec:
        stack = DeployedStack(packaged, workdir, monkeypatch, hec, ca_bundle)
        with stack.recorder.installed():
            yield stack.create()

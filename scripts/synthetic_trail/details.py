"""What a call carries besides who made it: requestParameters, responseElements, resources and
additionalEventData, as CloudTrail records them for each action the generator uses."""

from __future__ import annotations

import base64
import random
import time

from synthetic_trail.actions import DATA_ACTIONS
from synthetic_trail.clock import HOUR, aws_date, iso
from synthetic_trail.draws import ALNUM, KEY_ALPHABET, hex_digits, new_unique_id, rand_chars, uuid4
from synthetic_trail.world import JSON, Event, World

Details = tuple[JSON | None, JSON | None, list[JSON] | None, JSON | None]


def details(world: World, ev: Event, rng: random.Random) -> Details:
    """requestParameters, responseElements, resources, additionalEventData of a call."""
    p = ev.principal
    acct = p.account
    a = acct.account_id
    svc, name = ev.action
    ov = ev.ov or {}
    region = ev.region
    if svc == "s3":
        bucket = acct.buckets[(ev.seq + len(name)) % len(acct.buckets)]
        host = f"{bucket}.s3.{region}.amazonaws.com"
        if name == "ListBuckets":
            return {"Host": "s3.amazonaws.com"}, None, None, None
        if (svc, name) in DATA_ACTIONS:
            key = (
                ov.get("key")
                or f"{p.name.split('-')[0]}/{iso(ev.ts)[:10]}/{ev.seq % 9973:05d}.json"
            )
            resources = [
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                {"accountId": a, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
            ]
            size = 200 + (ev.seq * 7919) % 900_000
            extra = {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": size if name == "PutObject" else 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": base64.b64encode(rng.randbytes(42)).decode(),
                "bytesTransferredOut": size if name == "GetObject" else 0,
            }
            resp = {"x-amz-server-side-encryption": "aws:kms"} if name == "PutObject" else None
            return {"bucketName": bucket, "Host": host, "key": key}, resp, resources, extra
        sub = name[9:10].lower() + name[10:] if name.startswith(("GetBucket", "PutBucket")) else ""
        return {"bucketName": bucket, "Host": host, sub or "location": ""}, None, None, None
    if name == "AssumeRole":
        roles = acct.workload_roles.get(p.invoked_by or "") if p.kind == "AWSService" else None
        if roles:
            role_arn, sessions = roles[ev.seq % len(roles)]
            session = sessions[ev.seq % len(sessions)]
        else:
            role_arn = f"arn:aws:iam::{a}:role/partner-billing-export"
            session = f"billing-webhook-{ev.ts // HOUR}"
        creds = {
            "accessKeyId": "ASIA" + rand_chars(rng, KEY_ALPHABET, 16),
            "expiration": aws_date(ev.ts + HOUR),
        }
        return (
            {"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600},
            {
                "credentials": creds,
                "assumedRoleUser": {
                    "assumedRoleId": f"AROA{rand_chars(rng, KEY_ALPHABET, 17)}:{session}",
                    "arn": f"arn:aws:sts::{a}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session}",
                },
            },
            [{"accountId": a, "type": "AWS::IAM::Role", "ARN": role_arn}],
            None,
        )
    if name == "AssumeRoleWithWebIdentity":
        creds = {
            "accessKeyId": "ASIA" + rand_chars(rng, KEY_ALPHABET, 16),
            "expiration": aws_date(ev.ts + HOUR),
        }
        provider = f"arn:aws:iam::{a}:oidc-provider/token.actions.githubusercontent.com"
        return (
            {
                "roleArn": p.baseline_arn,
                "roleSessionName": ev.session.name,
                "durationSeconds": 3600,
            },
            {
                "credentials": creds,
                "subjectFromWebIdentityToken": p.web_identity,
                "assumedRoleUser": {
                    "assumedRoleId": f"{p.unique_id}:{ev.session.name}",
                    "arn": f"arn:aws:sts::{a}:assumed-role/{p.name}/{ev.session.name}",
                },
                "provider": provider,
                "audience": "sts.amazonaws.com",
            },
            [{"accountId": a, "type": "AWS::IAM::Role", "ARN": p.baseline_arn}],
            None,
        )
    if svc == "kms" and name in ("Decrypt", "GenerateDataKey", "RotateKey"):
        key_id = acct.kms_keys[ev.seq % len(acct.kms_keys)]
        key_arn = f"arn:aws:kms:{region}:{a}:key/{key_id}"
        res = [{"accountId": a, "type": "AWS::KMS::Key", "ARN": key_arn}]
        if name == "RotateKey":
            return None, None, res, None
        req: JSON = {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if name == "GenerateDataKey":
            req = {"keyId": f"alias/{acct.name}-app", "keySpec": "AES_256"}
        return req, None, res, None
    if name == "GetSecretValue":
        return (
            {"secretId": ov.get("req", {}).get("secretId") or acct.secrets[ev.seq % 3]},
            None,
            None,
            None,
        )
    if name == "GetParameter":
        return {"name": acct.parameters[ev.seq % 3], "withDecryption": True}, None, None, None
    if name == "GetParameters" and not ov:
        return {"names": acct.parameters[:2], "withDecryption": True}, None, None, None
    if name == "UpdateInstanceInformation":
        ip = ev.session.ips[0]
        return (
            {
                "instanceId": ev.session.name,
                "agentVersion": "3.3.1142.0",
                "agentStatus": "Active",
                "platformType": "Linux",
                "platformName": "Amazon Linux",
                "platformVersion": "2023",
                "iPAddress": ip,
                "computerName": f"ip-{ip.replace('.', '-')}.ec2.internal",
                "agentName": "amazon-ssm-agent",
                "availabilityZone": f"{region}a",
            },
            None,
            None,
            None,
        )
    if name in ("GetMessages", "AcknowledgeMessage"):
        return (
            {
                "destination": ev.session.name,
                "messagesRequestId": uuid4(rng),
                "visibilityTimeoutInSeconds": 10,
            },
            None,
            None,
            None,
        )
    if name in ("DescribeInstances", "DescribeVolumes", "DescribeSnapshots"):
        return {"maxResults": 1000, "filterSet": {}}, None, None, None
    if name == "CreateSnapshot":
        vol = f"vol-0{hex_digits(rng, 16)}"
        snap = f"snap-0{hex_digits(rng, 16)}"
        return (
            {"volumeId": vol, "description": "nightly backup"},
            {
                "requestId": uuid4(rng),
                "snapshotId": snap,
                "volumeId": vol,
                "status": "pending",
                "startTime": ev.ts * 1000,
                "encrypted": True,
            },
            None,
            None,
        )
    if name in ("RotationStarted", "RotationSucceeded"):
        return (
            None,
            None,
            [
                {
                    "accountId": a,
                    "type": "AWS::SecretsManager::Secret",
                    "ARN": f"arn:aws:secretsmanager:{region}:{a}:secret:{acct.secrets[0]}-"
                    + rand_chars(rng, ALNUM, 6),
                }
            ],
            None,
        )
    if name == "CreateUser":
        user = ov.get("req", {}).get("userName", "svc")
        return (
            ov.get("req"),
            {
                "user": {
                    "path": "/",
                    "userName": user,
                    "userId": new_unique_id(rng, "AIDA"),
                    "arn": f"arn:aws:iam::{a}:user/{user}",
                    "createDate": aws_date(ev.ts),
                }
            },
            None,
            None,
        )
    if name == "CreateAccessKey":
        user = (ov.get("req") or {}).get("userName") or p.name
        req_ak = ov.get("req")
        return (
            req_ak,
            {
                "accessKey": {
                    "userName": user,
                    "accessKeyId": "AKIA" + rand_chars(rng, KEY_ALPHABET, 16),
                    "status": "Active",
                    "createDate": aws_date(ev.ts),
                }
            },
            None,
            None,
        )
    if name == "CreateLoginProfile":
        req_lp = ov.get("req") or {}
        return (
            req_lp,
            {
                "loginProfile": {
                    "userName": req_lp.get("userName"),
                    "createDate": aws_date(ev.ts),
                    "passwordResetRequired": False,
                }
            },
            None,
            None,
        )
    if name == "CreateQueue":
        return (
            {"queueName": f"{acct.name}-orders-events"},
            {"queueUrl": f"https://sqs.{region}.amazonaws.com/{a}/{acct.name}-orders-events"},
            None,
            None,
        )
    if name == "GetQueueAttributes":
        return (
            {
                "queueUrl": f"https://sqs.{region}.amazonaws.com/{a}/{acct.name}-orders-events",
                "attributeNames": ["All"],
            },
            None,
            None,
            None,
        )
    if name == "ModifySnapshotAttribute":
        return ov.get("req"), {"requestId": uuid4(rng), "_return": True}, None, None
    if name == "GetCostAndUsage":
        day = time.strftime("%Y-%m-01", time.gmtime(ev.ts))
        return (
            {
                "timePeriod": {"start": day, "end": time.strftime("%Y-%m-%d", time.gmtime(ev.ts))},
                "granularity": "MONTHLY",
                "metrics": ["UnblendedCost"],
            },
            None,
            None,
            None,
        )
    if name == "PutAlternateContact":
        return (
            {
                "alternateContactType": "BILLING",
                "emailAddress": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "name": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "phoneNumber": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "title": "HIDDEN_DUE_TO_SECURITY_REASONS",
            },
            None,
            None,
            None,
        )
    if name == "DescribeTable":
        return (
            {"tableName": f"{acct.name}-orders"},
            None,
            [
                {
                    "accountId": a,
                    "type": "AWS::DynamoDB::Table",
                    "ARN": f"arn:aws:dynamodb:{region}:{a}:table/{acct.name}-orders",
                }
            ],
            None,
        )
    if name == "CreateLogStream":
        group = f"/aws/lambda/{ev.session.name}"
        if ev.session.name.startswith("i-"):
            group = f"/ec2/{acct.name}/app-server"
        return (
            {
                "logGroupName": group,
                "logStreamName": f"{iso(ev.ts)[:10].replace('-', '/')}/[$LATEST]{hex_digits(rng, 32)}",
            },
            None,
            None,
            None,
        )
    if name == "GetRole":
        return {"roleName": "TerraformDeployRole"}, None, None, None
    if "req" in ov:
        return ov["req"], None, None, None
    return None, None, None, None

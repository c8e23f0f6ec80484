"""An event as a CloudTrail record: userIdentity, address and client, errors, and the fields
in the names and order CloudTrail uses (`details.py` fills in what each call carries)."""

from __future__ import annotations

import hashlib
import random
import re
import zlib

from synthetic_trail.actions import API_VERSION_SUFFIX, DATA_ACTIONS, Action, is_global, is_read
from synthetic_trail.clock import HOUR, iso
from synthetic_trail.details import details
from synthetic_trail.draws import KEY_ALPHABET, hex_digits, uuid4
from synthetic_trail.profiles import UA_BROWSER
from synthetic_trail.world import JSON, Event, Principal, Session, World

EVENT_VERSION_108 = frozenset({"ec2messages", "ssm", "kms", "logs", "rds", "route53", "acm"})
IAM_PREFIX = {"monitoring": "cloudwatch"}
CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")
CONSOLE_LOGIN_TO = "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true"


def _source(action: Action) -> str:
    return f"{action[0]}.amazonaws.com"


def _akid(world: World, p: Principal, sess: Session, created: int) -> str:
    """The temporary access key id of a session's credentials issued at `created`."""
    key = (p.pid, sess.name, created)
    akid = world.akids.get(key)
    if akid is None:
        if len(world.akids) > 50_000:
            world.akids.clear()
        h = hashlib.blake2b(f"{world.seed}|{key}".encode(), digest_size=16).digest()
        akid = world.akids[key] = "ASIA" + "".join(KEY_ALPHABET[b % 32] for b in h)
    return akid


def _created(ts: int, p: Principal, sess: Session) -> int:
    """Temporary credentials are refreshed hourly, at a minute fixed per session."""
    off = (zlib.crc32(f"{p.pid}|{sess.name}".encode()) % 55) * 60
    return ts - ((ts - off) % HOUR)


def _identity(world: World, ev: Event, console_login: bool) -> JSON:
    """userIdentity; records of one session and credential share one (read-only) dict."""
    p, sess = ev.principal, ev.session
    if ev.ov and ev.ov.get("identity"):
        return _make_identity(world, ev, console_login)
    key = (p.pid, sess.name, _created(ev.ts, p, sess), console_login)
    ident = world.identities.get(key)
    if ident is None:
        if len(world.identities) > 20_000:
            world.identities.clear()
        ident = world.identities[key] = _make_identity(world, ev, console_login)
    return ident


def _make_identity(world: World, ev: Event, console_login: bool) -> JSON:
    p, sess = ev.principal, ev.session
    acct = p.account.account_id
    ov = ev.ov or {}
    if ov.get("identity") == "web" and p.web_identity:
        provider = f"arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com"
        return {
            "type": "WebIdentityUser",
            "principalId": f"{provider}:sts.amazonaws.com:{p.web_identity}",
            "userName": p.web_identity,
            "identityProvider": provider,
        }
    if p.kind == "AWSService":
        return {"type": "AWSService", "invokedBy": p.invoked_by}
    if p.kind == "ServiceEvent":
        return {"accountId": acct, "invokedBy": p.invoked_by}
    created = _created(ev.ts, p, sess)
    attributes = {"creationDate": iso(created), "mfaAuthenticated": "true" if p.mfa else "false"}
    if p.kind == "AssumedRole":
        ident: JSON = {
            "type": "AssumedRole",
            "principalId": f"{p.unique_id}:{sess.name}",
            "arn": f"arn:aws:sts::{acct}:assumed-role/{p.name}/{sess.name}",
            "accountId": acct,
        }
        if not console_login:
            ident["accessKeyId"] = _akid(world, p, sess, created)
        context: JSON = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": p.unique_id,
                "arn": p.baseline_arn,
                "accountId": acct,
                "userName": p.name,
            },
            "webIdFederationData": {},
            "attributes": attributes,
        }
        if p.ec2_role:
            context["ec2RoleDelivery"] = "2.0"
        ident["sessionContext"] = context
        if p.invoked_by:
            ident["invokedBy"] = p.invoked_by
        return ident
    if p.kind == "IAMUser":
        ident = {
            "type": "IAMUser",
            "principalId": p.unique_id,
            "arn": p.baseline_arn,
            "accountId": acct,
        }
        if not console_login:
            ident["accessKeyId"] = _akid(world, p, sess, created) if sess.console else p.access_key
        ident["userName"] = p.name
        if sess.console and not console_login:
            ident["sessionContext"] = {
                "sessionIssuer": {},
                "webIdFederationData": {},
                "attributes": attributes,
            }
        return ident
    # Root
    ident = {
        "type": "Root",
        "principalId": acct,
        "arn": p.baseline_arn,
        "accountId": acct,
        "accessKeyId": "" if console_login else _akid(world, p, sess, created),
    }
    if not console_login:
        ident["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": attributes,
        }
    return ident


def _iam_action(action: Action) -> str:
    return f"{IAM_PREFIX.get(action[0], action[0])}:{API_VERSION_SUFFIX.sub('', action[1])}"


def _cli_command(action: Action) -> str:
    """`ec2.describe-instances`, as aws-cli names the command in its user agent."""
    return f"{action[0]}.{CAMEL_BOUNDARY.sub('-', API_VERSION_SUFFIX.sub('', action[1])).lower()}"


def _error(action: Action, kind: str, caller: str, resource: str) -> tuple[str, str]:
    svc = action[0]
    iam = _iam_action(action)
    if kind == "denied":
        msg = (
            f"User: {caller} is not authorized to perform: {iam} on resource: {resource} "
            f"because no identity-based policy allows the {iam} action"
        )
        if svc == "ec2":
            return (
                "Client.UnauthorizedOperation",
                f"You are not authorized to perform this operation. {msg}",
            )
        if svc == "s3":
            return "AccessDenied", "Access Denied"
        if svc in ("iam", "sts", "organizations", "cloudtrail"):
            return "AccessDenied", msg
        return "AccessDeniedException", msg
    if kind == "throttled":
        if svc == "ec2":
            return "Client.RequestLimitExceeded", "Request limit exceeded."
        return "ThrottlingException", "Rate exceeded"
    if svc == "iam":
        return "NoSuchEntityException", "The role with name deploy-preview cannot be found."
    if svc == "ec2":
        return "Client.InvalidInstanceID.NotFound", "The instance ID does not exist"
    return "ResourceNotFoundException", "Requested resource not found"


def _tls_host(action: Action, region: str) -> str:
    svc = action[0]
    if is_global(action):
        return "signin.aws.amazon.com" if svc == "signin" else f"{svc}.amazonaws.com"
    return f"{svc}.{region}.amazonaws.com"


def render(world: World, ev: Event, rng: random.Random) -> JSON:
    """One CloudTrail record, with the field names and order CloudTrail uses."""
    p, sess = ev.principal, ev.session
    svc, name = ev.action
    ov = ev.ov or {}
    source = _source(ev.action)
    console_login = name == "ConsoleLogin"
    service_event = p.kind == "ServiceEvent"
    is_data = ev.action in DATA_ACTIONS
    web = ov.get("identity") == "web"

    ip = ov.get("ip") or (sess.ips[0] if len(sess.ips) == 1 else rng.choice(sess.ips))
    ua = ov.get("ua") or sess.user_agent
    if "{cmd}" in ua:
        ua = ua.replace("{cmd}", _cli_command(ev.action))
    if web:
        ip = sess.ips[0] if len(sess.ips) == 1 else rng.choice(sess.ips)
        ua = "aws-sdk-nodejs/2.1692.0 linux/v20.16.0 configure-aws-credentials-for-github-actions"
    if sess.console and not console_login and not ov and rng.random() < 0.12:
        ip = ua = "AWS Internal"  # a call the console's backend makes for the user
    elif sess.console and not console_login:
        ua = rng.choice(("AWS Internal", "console.amazonaws.com", UA_BROWSER))

    ident = _identity(world, ev, console_login)
    rec: JSON = {
        "eventVersion": "1.08" if svc in EVENT_VERSION_108 or service_event else "1.09",
        "userIdentity": ident,
        "eventTime": iso(ev.ts),
        "eventSource": source,
        "eventName": name,
        "awsRegion": ev.region,
        "sourceIPAddress": ip,
        "userAgent": ua,
    }
    error: tuple[str, str] | None = None
    err = ov.get("error")
    caller = ident.get("arn") or f"arn:aws:iam::{p.account.account_id}:root"
    resource_region = "" if is_global(ev.action) else ev.region
    resource = f"arn:aws:{IAM_PREFIX.get(svc, svc)}:{resource_region}:{p.account.account_id}:*"
    if isinstance(err, tuple):
        error = (str(err[0]), str(err[1]))
    elif isinstance(err, str):
        error = _error(ev.action, err, caller, resource)
    elif not ov and p.kind not in ("AWSService", "ServiceEvent") and not console_login:
        r = rng.random()
        if r < 0.012:
            error = _error(ev.action, "denied", caller, resource)
        elif r < 0.02:
            error = _error(ev.action, "throttled", caller, resource)
        elif r < 0.025 and name.startswith(("Get", "Describe")):
            error = _error(ev.action, "notfound", caller, resource)
    if error:
        rec["errorCode"], rec["errorMessage"] = error

    req: JSON | None
    resp: JSON | None
    resources: list[JSON] | None
    extra: JSON | None
    if console_login:
        mfa = ov.get("mfa") or ("Yes" if p.mfa else "No")
        req, resp, resources = None, {"ConsoleLogin": "Success"}, None
        extra = {"LoginTo": CONSOLE_LOGIN_TO, "MobileVersion": "No", "MFAUsed": mfa}
    else:
        req, resp, resources, extra = details(world, ev, rng)
    if error:
        resp = None
    rec["requestParameters"] = req
    rec["responseElements"] = resp
    if extra:
        rec["additionalEventData"] = extra
    if not (service_event or console_login):
        rec["requestID"] = hex_digits(rng, 16).upper() if svc == "s3" else uuid4(rng)
    rec["eventID"] = uuid4(rng)
    rec["readOnly"] = False if console_login else is_read(ev.action)
    if resources:
        rec["resources"] = resources
    rec["eventType"] = (
        "AwsServiceEvent"
        if service_event
        else "AwsConsoleSignIn"
        if console_login
        else "AwsApiCall"
    )
    rec["managementEvent"] = not is_data
    rec["recipientAccountId"] = p.account.account_id
    if p.kind == "AWSService" and name == "AssumeRole":
        rec["sharedEventID"] = uuid4(rng)
    if sess.vpce and not ov:
        rec["vpcEndpointId"] = sess.vpce
    if service_event:
        rec["serviceEventDetails"] = (
            {"keyId": resources[0]["ARN"].rsplit("/", 1)[-1]} if resources and svc == "kms" else {}
        )
    rec["eventCategory"] = "Data" if is_data else "Management"
    if not (service_event or p.kind == "AWSService" or p.invoked_by) and (
        ov or rng.random() < 0.85
    ):
        tls13 = rng.random() < 0.8
        rec["tlsDetails"] = {
            "tlsVersion": "TLSv1.3" if tls13 else "TLSv1.2",
            "cipherSuite": "TLS_AES_128_GCM_SHA256" if tls13 else "ECDHE-RSA-AES128-GCM-SHA256",
            "clientProvidedHostHeader": _tls_host(ev.action, ev.region),
        }
    if sess.console and not console_login:
        rec["sessionCredentialFromConsole"] = "true"
    return rec

'use strict';

// Every deployment parameter, checked once at package time, and the parts of serverless.yml that
// depend on them: the real-time trigger, each function's IAM role with only the statements its
// settings call for, and the security options (customer managed key, VPC, access logs).
//
// Parameters come, first found wins, from --param="name=value", then infra/params/<stage>.yml
// (so a redeploy of a stage cannot forget one), then the defaults in PARAMETERS below; osls's
// `params` block is built here from the same table (`params` below). An unknown name, a bad value
// or a missing trailBucket fails `npm run package` with one line per problem and nothing else:
// osls would report a rejected variable with its stack trace once per property that uses it.
//
// Used as ${file(./settings.js):NAME}; each export receives osls's options and variable resolver.

// Names the functions check again at cold start come from one definition shared with the core.
const SHARED = require('../layers/core/src/cloudtrail_anomaly/names.json');
const whole = (pattern) => new RegExp(`^(?:${pattern})$`);

const NAME = {
  bucket: whole(SHARED.bucket),
  prefix: whole(SHARED.prefix),
  orgId: whole(SHARED.org_id),
  account: /^[0-9]{12}$/,
  region: /^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$/,
  kmsKey: /^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[A-Za-z0-9-]+$/,
  roleName: /^[\w+=,.@-]{1,64}$/,
  secret: /^[\w/+=.@-]{1,512}$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[\w/+=.@-]+$/,
  ssmParameter: /^[A-Za-z0-9_.\/-]{1,2048}$/,
  glue: whole(SHARED.glue_name),
  url: /^https:\/\/[^\s]+$/,
  email: /^[^@\s]+@[^@\s]+\.[^@\s]+$/,
  splunkIndex: /^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$/,
  eventBus: /^[A-Za-z0-9._-]{1,256}$|^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus\/[A-Za-z0-9._-]{1,256}$/,
  subnet: /^subnet-[0-9a-f]{8,17}$/,
  securityGroup: /^sg-[0-9a-f]{8,17}$/,
  metricsNamespace: /^(?!AWS\/)[A-Za-z0-9 ._\/#:-]{1,255}$/,
};
const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'];
// CloudWatch Logs accepts only these retention periods.
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
  3288, 3653,
];

// --- how a parameter's text becomes a value (each returns [value] or throws a reason) ---

class ParameterError extends Error {}

const text = (pattern, hint) => (raw) => {
  if (raw && !pattern.test(raw)) throw new ParameterError(hint || `does not match ${pattern}`);
  return raw;
};
const oneOf = (...allowed) => (raw) => {
  if (!allowed.includes(raw)) throw new ParameterError(`expected ${allowed.join(', ')}`);
  return raw;
};
const integer = (min, max = Number.MAX_SAFE_INTEGER, { optional = false } = {}) => (raw) => {
  if (optional && raw === '') return null;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ParameterError(`a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`);
  }
  return Number(raw);
};
const flag = (raw) => {
  const value = raw.toLowerCase();
  if (['', 'false', 'no', '0'].includes(value)) return false;
  if (['true', 'yes', '1'].includes(value)) return true;
  throw new ParameterError('expected true or false');
};
const countOrOff = (raw) => {
  const value = raw.toLowerCase();
  if (['', 'off', 'none'].includes(value)) return null;
  if (!/^[1-9][0-9]*$/.test(value)) throw new ParameterError('a count, or off');
  return Number(value);
};
const list = (pattern, hint) => (raw) => {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((s) => !pattern.test(s));
  if (bad.length) throw new ParameterError(`${bad.join(', ')}: ${hint}`);
  return items;
};

// Every parameter: its default and how it is read. The README's "Deploy to AWS" lists them.
const PARAMETERS = {
  // --- where the trail is ---
  trailBucket: { default: '', read: text(NAME.bucket, 'not an S3 bucket name'), required: true },
  trailPrefix: { default: '', read: (raw) => text(NAME.prefix, 'not an S3 key prefix')(raw.replace(/^\/+|\/+$/g, '')) },
  orgId: { default: '', read: text(NAME.orgId, 'an organization id: o-…') },
  trailBucketAccount: { default: '', read: text(NAME.account, 'a 12-digit account id') },
  trailKmsKeyArn: { default: '', read: text(NAME.kmsKey, 'a KMS key ARN') },
  trailAccounts: { default: '', read: list(NAME.account, '12-digit account ids, comma-separated') },
  trailRegions: { default: '', read: list(NAME.region, 'region names, comma-separated') },
  // --- how new objects reach the real-time function ---
  trigger: { default: 'sqs', read: oneOf('sqs', 's3') },
  eventBridge: { default: 'false', read: flag },
  batchSize: { default: '100', read: integer(1, 10000) },
  batchWindowSeconds: { default: '10', read: integer(0, 300) },
  maxReceiveCount: { default: '5', read: integer(1, 1000) },
  // The real-time function's reserved concurrency; "off" where the account's concurrency limit
  // is 10 (Lambda keeps 10 unreserved, so nothing can be reserved there).
  reservedConcurrency: { default: '10', read: countOrOff },
  maximumConcurrency: { default: '', read: integer(2, 1000, { optional: true }) },
  // --- the functions ---
  architecture: { default: process.env.LAMBDA_ARCHITECTURE || 'arm64', read: oneOf('arm64', 'x86_64') },
  runtime: { default: process.env.LAMBDA_RUNTIME || 'python3.12', read: oneOf('python3.12', 'python3.13') },
  realtimeMemory: { default: '1024', read: integer(128, 10240) },
  realtimeTimeout: { default: '180', read: integer(1, 900) },
  minRemainingSeconds: { default: '30', read: integer(0) },
  reconcileMemory: { default: '1024', read: integer(128, 10240) },
  reconcileTimeout: { default: '900', read: integer(1, 900) },
  reconcileReservedConcurrency: { default: '1', read: countOrOff },
  logRetentionDays: { default: '30', read: oneOf(...LOG_RETENTION_DAYS.map(String)) },
  logLevel: { default: 'INFO', read: oneOf('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL') },
  metricsNamespace: { default: 'CloudTrailAnomaly', read: text(NAME.metricsNamespace, 'a CloudWatch namespace (not AWS/…)') },
  baselineCacheSize: { default: '200000', read: integer(0) },
  dynamodbWriteConcurrency: { default: '8', read: integer(1, 64) },
  ledgerTtlDays: { default: '14', read: integer(1, 3650) },
  maxObjectBytes: { default: '', read: integer(1, Number.MAX_SAFE_INTEGER, { optional: true }) },
  // --- reconciliation and Athena ---
  reconcileAthena: { default: 'missed', read: oneOf('missed', 'full', 'off') },
  athenaDatabase: { default: 'cloudtrail_anomaly', read: text(NAME.glue, 'a Glue name: lower case, digits, _') },
  athenaTable: { default: 'cloudtrail', read: text(NAME.glue, 'a Glue name: lower case, digits, _') },
  athenaResultsExpirationDays: { default: '7', read: integer(1, 3650) },
  athenaBytesScannedCutoff: { default: '1099511627776', read: integer(10000000) }, // 1 TiB; Athena's minimum is 10 MB
  // --- alert delivery ---
  splunkUrl: { default: '', read: text(NAME.url, 'an https:// URL') },
  splunkSecret: { default: '', read: text(NAME.secret, 'a Secrets Manager secret name or ARN') },
  splunkParameter: { default: '', read: text(NAME.ssmParameter, 'an SSM parameter name') },
  splunkTokenKmsKeyArn: { default: '', read: text(NAME.kmsKey, 'a KMS key ARN') },
  splunkIndex: { default: '', read: text(NAME.splunkIndex, 'a Splunk index name') },
  splunkMinSeverity: { default: '', read: (raw) => (raw ? oneOf(...SEVERITIES)(raw.toLowerCase()) : '') },
  // Or, instead of Splunk (one destination a deployment: docs/aws-sinks.md): findings in
  // Security Hub, or events on an EventBridge bus (a name or ARN in this account and region).
  securityHub: { default: 'false', read: flag },
  securityHubMemberAccounts: { default: 'false', read: flag },
  alertEventBus: { default: '', read: text(NAME.eventBus, 'an EventBridge bus name or ARN') },
  alertFormat: { default: 'alert', read: oneOf('alert', 'ocsf') },
  // --- optional enrichment (config [enrichment]) ---
  enrichOrganizations: { default: 'false', read: flag },
  enrichmentRoleName: { default: '', read: text(NAME.roleName, 'an IAM role name') },
  // --- alarms ---
  alarmEmail: { default: '', read: text(NAME.email, 'an e-mail address') },
  pendingAlertMaxAgeSeconds: { default: '3600', read: integer(60) },
  // --- security options (docs/security.md); all off by default: each costs money or set-up ---
  kmsKeyArn: { default: '', read: text(NAME.kmsKey, 'a KMS key ARN') },
  subnetIds: { default: '', read: list(NAME.subnet, 'subnet ids, comma-separated') },
  securityGroupIds: { default: '', read: list(NAME.securityGroup, 'security group ids, comma-separated') },
  accessLogsBucket: { default: '', read: text(NAME.bucket, 'not an S3 bucket name') },
};
const KNOWN = Object.keys(PARAMETERS).sort((a, b) => a.localeCompare(b));

// --- reading and checking them, once ---

const hasOwn = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

// The closest known name (a typo: one or two letters off, or another letter case).
function suggestion(name) {
  const distance = (a, b) => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i += 1) {
      let diagonal = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j += 1) {
        const above = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
        diagonal = above;
      }
    }
    return row[b.length];
  };
  const scored = KNOWN.map((known) => [distance(name.toLowerCase(), known.toLowerCase()), known]);
  const [best, known] = scored.sort((a, b) => a[0] - b[0])[0];
  return best <= 2 ? ` (did you mean ${known}?)` : '';
}

function cliParams(options, errors) {
  const given = {};
  for (const item of [].concat(options.param || [])) {
    const match = /^([^=]+)=(.+)$/s.exec(item); // osls's own rule: a name, "=", a value
    if (match) given[match[1]] = match[2].trimEnd();
    else errors.push(`--param="${item}": expected --param="name=value"`);
  }
  return given;
}

// infra/params/<stage>.yml: the stage's parameters (and its region), kept with the code so a
// redeploy gets the same ones. Absent is fine.
async function stageFile(stage, resolveVariable, errors) {
  if (!/^[A-Za-z0-9-]+$/.test(stage)) return {};
  const content = await resolveVariable(`file(./params/${stage}.yml), null`);
  if (content == null) return {};
  if (typeof content !== 'object' || Array.isArray(content)) {
    errors.push(`infra/params/${stage}.yml: expected "name: value" lines`);
    return {};
  }
  return content;
}

function fail(errors) {
  // One line a problem; nothing else is worth reading (see the header).
  process.stderr.write(errors.map((line) => `Error: ${line}\n`).join(''));
  process.exit(1);
}

function regionOf(arn) {
  return typeof arn === 'string' && arn.startsWith('arn:') ? arn.split(':')[3] : '';
}

function crossChecks(p, errors) {
  if (p.eventBridge && p.trigger !== 'sqs') {
    errors.push('param eventBridge=true routes events to the queue: it needs trigger=sqs');
  }
  // The sink fails the cold start on a half-configured Splunk: fail the package instead.
  if (p.splunkSecret && p.splunkParameter) {
    errors.push('params splunkSecret and splunkParameter: set only one');
  }
  if (p.splunkUrl && !(p.splunkSecret || p.splunkParameter)) {
    errors.push('param splunkUrl needs the token: splunkSecret or splunkParameter');
  }
  if (!p.splunkUrl && (p.splunkSecret || p.splunkParameter || p.splunkTokenKmsKeyArn || p.splunkIndex || p.splunkMinSeverity)) {
    errors.push('params splunkSecret/splunkParameter/splunkTokenKmsKeyArn/splunkIndex/splunkMinSeverity need splunkUrl');
  }
  // The functions refuse several destinations at cold start (app/wiring.py): refuse them here.
  const destinations = [
    p.splunkUrl && 'splunkUrl',
    p.securityHub && 'securityHub',
    p.alertEventBus && 'alertEventBus',
  ].filter(Boolean);
  if (destinations.length > 1) {
    errors.push(`params ${destinations.join(', ')}: one alert destination per deployment`);
  }
  if (p.securityHubMemberAccounts && !p.securityHub) {
    errors.push('param securityHubMemberAccounts=true needs securityHub=true');
  }
  if (p.alertEventBus.startsWith('arn:') && p.region && regionOf(p.alertEventBus) !== p.region) {
    errors.push(`param alertEventBus=${p.alertEventBus}: a bus in ${regionOf(p.alertEventBus)}, not this stack's region ${p.region}`);
  }
  // The SQS event source's batch: over 10 messages only with a window of at least a second.
  if (p.batchSize > 10 && p.batchWindowSeconds < 1) {
    errors.push(`param batchSize=${p.batchSize} needs batchWindowSeconds of at least 1 (AWS: over 10 messages)`);
  }
  // Handing back every message with as much time left as the timeout would send them all to
  // the dead-letter queue.
  if (!(p.minRemainingSeconds < p.realtimeTimeout / 2)) {
    errors.push(
      `param minRemainingSeconds=${p.minRemainingSeconds}: whole seconds under half of realtimeTimeout=${p.realtimeTimeout}`,
    );
  }
  if (p.trigger === 'sqs' && p.reservedConcurrency != null) {
    // A poller that invokes more than the function may run gets throttled, and a throttled
    // message counts as received: enough of them and it lands in the dead-letter queue.
    if (p.reservedConcurrency < 2) {
      errors.push(`param reservedConcurrency=${p.reservedConcurrency}: at least 2 with trigger=sqs (the queue's event source runs at least 2), or off`);
    } else if (p.maximumConcurrency != null && p.maximumConcurrency > p.reservedConcurrency) {
      errors.push(
        `param maximumConcurrency=${p.maximumConcurrency} is above reservedConcurrency=${p.reservedConcurrency}: ` +
          'throttled messages would count as received and reach the dead-letter queue',
      );
    }
  }
  // The functions fail their cold start on a cap above a third of their memory (reader.py
  // lets resident memory grow by 1.75 times the cap while it decodes an object).
  const memory = Math.min(p.realtimeMemory, p.reconcileMemory);
  if (p.maxObjectBytes != null && p.maxObjectBytes > Math.floor((memory * 1024 * 1024) / 3)) {
    errors.push(`param maxObjectBytes=${p.maxObjectBytes}: at most a third of the functions' memory (${memory} MB)`);
  }
  // Cross-account reads stay inside the organization, or inside the listed accounts.
  if (p.enrichmentRoleName && !p.orgId && !p.trailAccounts.length) {
    errors.push('param enrichmentRoleName assumes a role in other accounts: give orgId or trailAccounts to keep it inside them');
  }
  if (p.subnetIds.length ? !p.securityGroupIds.length : p.securityGroupIds.length) {
    errors.push('params subnetIds and securityGroupIds: set both (VPC) or neither');
  }
  // SQS, DynamoDB, CloudWatch Logs and Lambda take a key of their own region only; the token's
  // secret is read from the functions' region.
  for (const name of ['kmsKeyArn', 'splunkSecret']) {
    const where = regionOf(p[name]);
    if (where && where !== p.region) {
      errors.push(`param ${name}=${p[name]} is in ${where}, the stack in ${p.region}: use one of ${p.region}`);
    }
  }
}

// Every parameter's value, checked (or the process ends with one line a problem).
async function load({ options, resolveVariable }) {
  const stage = options.stage || 'dev';
  const where = `infra/params/${stage}.yml`;
  const errors = [];
  const cli = cliParams(options, errors);
  const file = await stageFile(stage, resolveVariable, errors);
  const given = [
    ...Object.keys(cli).map((name) => [name, '--param']),
    ...Object.keys(file).filter((name) => name !== 'region').map((name) => [name, where]),
  ];
  for (const [name, source] of given) {
    if (!hasOwn(PARAMETERS, name)) {
      const hint = name === 'region' ? ' (the region is --region, or region: in a stage file)' : suggestion(name);
      errors.push(`${source}: unknown param ${name}${hint}; known params: ${KNOWN.join(', ')}`);
    }
  }
  const p = { stage };
  for (const [name, spec] of Object.entries(PARAMETERS)) {
    let raw = spec.default;
    if (hasOwn(cli, name)) raw = cli[name];
    else if (hasOwn(file, name) && file[name] != null) raw = file[name];
    raw = String(raw).trim();
    if (spec.required && !raw) {
      errors.push(`param ${name} is required: --param="${name}=..." or "${name}: ..." in ${where}`);
      continue;
    }
    try {
      p[name] = spec.read(raw);
    } catch (error) {
      if (!(error instanceof ParameterError)) throw error;
      errors.push(`param ${name}=${raw}: ${error.message}`);
    }
  }
  // No silent us-east-1: the queue must be in the trail bucket's region (S3 notifies only there).
  p.region = String(options.region || file.region || '').trim();
  if (!p.region) {
    errors.push(`no region: deploy in the trail bucket's region with --region REGION, or "region: REGION" in ${where}`);
  } else if (!NAME.region.test(p.region)) {
    errors.push(`region ${p.region}: not a region name`);
  }
  if (!errors.length) crossChecks(p, errors);
  if (errors.length) fail(errors);
  return { ...p, ...derived(p) };
}

// What the statements and resources below use, named for what it is.
function derived(p) {
  const logsPrefix = `${p.trailPrefix ? `${p.trailPrefix}/` : ''}AWSLogs/`;
  return {
    bucket: p.trailBucket,
    // Where CloudTrail writes: <prefix/>AWSLogs/[<org id>/]<account>/…; an organization
    // trail's objects are all under AWSLogs/<org id>/, and nothing else needs reading.
    logsPrefix,
    objectsPrefix: p.orgId ? `${logsPrefix}${p.orgId}/` : logsPrefix,
    bucketAccount: p.trailBucketAccount,
    trailKey: p.trailKmsKeyArn,
    splunk: { url: p.splunkUrl, secret: p.splunkSecret, parameter: p.splunkParameter, key: p.splunkTokenKmsKeyArn },
    roleName: p.enrichmentRoleName,
    organizations: p.enrichOrganizations,
    database: p.athenaDatabase,
    table: p.athenaTable,
    stackKey: p.kmsKeyArn,
    vpc: p.subnetIds.length ? { subnetIds: p.subnetIds, securityGroupIds: p.securityGroupIds } : null,
    // The SQS event source never invokes more than the function may run (see crossChecks).
    pollerConcurrency:
      p.trigger !== 'sqs' ? null : p.maximumConcurrency ?? (p.reservedConcurrency != null ? p.reservedConcurrency : null),
  };
}

const sub = (text) => ({ 'Fn::Sub': text });
const arn = (logicalId) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });

function trailObjects(p) {
  return sub(`arn:\${AWS::Partition}:s3:::${p.bucket}/${p.objectsPrefix}*`);
}

function parameterArn(name) {
  const path = name.replace(/^\/+/, ''); // "/a/b" is parameter/a/b in its ARN
  return sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/${path}`);
}

function secretArn(secret) {
  if (secret.startsWith('arn:')) return secret;
  // A name: Secrets Manager appends "-" and six random characters to the ARN.
  return sub(`arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${secret}-??????`);
}

// What both functions call: logs, traces, the baseline table (every DynamoDB action the
// adapters make; a TransactWriteItems is authorized per item as PutItem, UpdateItem,
// DeleteItem or ConditionCheckItem, so it has no action of its own), the trail's objects.
function commonStatements(p, logGroup) {
  const statements = [
    {
      Sid: 'OwnLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: arn(logGroup),
    },
    {
      Sid: 'XRayTraces',
      Effect: 'Allow',
      Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
      Resource: '*', // X-Ray has no resource-level permissions for these two actions
    },
    {
      Sid: 'Baseline',
      Effect: 'Allow',
      Action: [
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem', // the processed-object ledger is written 25 entries a request
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
        'dynamodb:ConditionCheckItem',
      ],
      Resource: arn('BaselineTable'),
    },
    {
      Sid: 'TrailObjects',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: trailObjects(p),
    },
  ];
  if (p.trailKey) {
    statements.push({
      Sid: 'TrailKey',
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: p.trailKey,
    });
  }
  if (p.splunk.secret) {
    statements.push({
      Sid: 'SplunkToken',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue'],
      Resource: secretArn(p.splunk.secret),
    });
  }
  if (p.splunk.parameter) {
    statements.push({
      Sid: 'SplunkToken',
      Effect: 'Allow',
      Action: ['ssm:GetParameter'],
      Resource: parameterArn(p.splunk.parameter),
    });
  }
  if (p.splunk.key) {
    // A token encrypted with a customer managed key (AWS managed keys need no statement).
    statements.push({
      Sid: 'SplunkTokenKey',
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: p.splunk.key,
    });
  }
  if (p.securityHub) {
    statements.push({
      Sid: 'SecurityHubFindings',
      Effect: 'Allow',
      Action: ['securityhub:BatchImportFindings'],
      // Findings are imported through the account's own default product.
      Resource: sub('arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default'),
    });
  }
  if (p.alertEventBus) {
    statements.push({
      Sid: 'AlertEvents',
      Effect: 'Allow',
      Action: ['events:PutEvents'],
      Resource: p.alertEventBus.startsWith('arn:')
        ? p.alertEventBus
        : sub(`arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:event-bus/${p.alertEventBus}`),
    });
  }
  if (p.organizations) {
    statements.push({
      Sid: 'AccountNames',
      Effect: 'Allow',
      Action: ['organizations:ListAccounts'],
      Resource: '*', // ListAccounts has no resource-level permissions
    });
  }
  if (p.roleName) {
    statements.push(enrichmentRoles(p));
  }
  if (p.vpc) statements.push(...vpcStatements(p));
  return statements;
}

// The role is assumed in each account the trail covers, and nowhere else: in the listed
// accounts (trailAccounts), and in accounts of the organization (orgId): the role is the
// resource of sts:AssumeRole, so aws:ResourceOrgID is the organization of the account that owns
// it. A role of that name in an account outside both is refused.
function enrichmentRoles(p) {
  const role = (account) => sub(`arn:\${AWS::Partition}:iam::${account}:role/${p.roleName}`);
  const statement = {
    Sid: 'EnrichmentRoles',
    Effect: 'Allow',
    Action: ['sts:AssumeRole'],
    Resource: p.trailAccounts.length ? p.trailAccounts.map(role) : role('*'),
  };
  if (p.orgId) statement.Condition = { StringEquals: { 'aws:ResourceOrgID': p.orgId } };
  return statement;
}

// What Lambda does with the execution role to attach a function to the VPC's subnets
// (AWS Lambda Developer Guide, "Giving Lambda functions access to resources in an Amazon VPC").
function vpcStatements(p) {
  const ec2 = (suffix) => sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:${suffix}`);
  return [
    {
      Sid: 'VpcDescribe',
      Effect: 'Allow',
      Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
      Resource: '*', // EC2's Describe actions have no resource-level permissions
    },
    {
      Sid: 'VpcNetworkInterfaces',
      Effect: 'Allow',
      Action: ['ec2:CreateNetworkInterface'],
      Resource: [
        ec2('network-interface/*'),
        ...p.vpc.subnetIds.map((id) => ec2(`subnet/${id}`)),
        ...p.vpc.securityGroupIds.map((id) => ec2(`security-group/${id}`)),
      ],
    },
    {
      Sid: 'VpcNetworkInterfaceUpkeep',
      Effect: 'Allow',
      Action: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      Resource: ec2('network-interface/*'),
    },
  ];
}

// The stack's own customer managed key (kmsKeyArn): reading the queue (and, for trigger=s3,
// sending failures to the dead-letter queue), Athena's results written and read back with the
// reconciliation's credentials. DynamoDB, Lambda and CloudWatch Logs use the key through grants
// and the key policy, not the functions' roles (docs/security.md).
function stackKey(p, actions) {
  return { Sid: 'StackKey', Effect: 'Allow', Action: actions, Resource: p.stackKey };
}

function realtimeStatements(p) {
  const statements = commonStatements(p, 'RealtimeLogGroup');
  // Without s3:ListBucket, S3 answers a GET of a deleted object with 403 AccessDenied instead of
  // 404 NoSuchKey, and the object's message would be retried into the dead-letter queue instead
  // of skipped as gone. The function lists nothing itself: IfExists lets the GET's implicit
  // check (which has no s3:prefix) through, while a real listing stays inside the logs prefix.
  statements.push({
    Sid: 'TrailMissingObjects',
    Effect: 'Allow',
    Action: ['s3:ListBucket'],
    Resource: sub(`arn:\${AWS::Partition}:s3:::${p.bucket}`),
    Condition: { StringLikeIfExists: { 's3:prefix': [`${p.logsPrefix}*`] } },
  });
  if (p.trigger === 'sqs') {
    statements.push({
      Sid: 'NotificationQueue',
      Effect: 'Allow',
      Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      Resource: arn('NotificationQueue'),
    });
  } else {
    statements.push({
      Sid: 'FailedInvocations',
      Effect: 'Allow',
      Action: ['sqs:SendMessage'],
      Resource: arn('NotificationDeadLetterQueue'),
    });
  }
  if (p.stackKey) {
    statements.push(stackKey(p, p.trigger === 'sqs' ? ['kms:Decrypt'] : ['kms:Decrypt', 'kms:GenerateDataKey']));
  }
  return statements;
}

function reconcileStatements(p) {
  const bucket = sub(`arn:\${AWS::Partition}:s3:::${p.bucket}`);
  const glue = (suffix) => sub(`arn:\${AWS::Partition}:glue:\${AWS::Region}:\${AWS::AccountId}:${suffix}`);
  const results = { 'Fn::GetAtt': ['AthenaResultsBucket', 'Arn'] };
  return [
    ...commonStatements(p, 'ReconcileLogGroup'),
    {
      // Digest folders and log folders of the window; Athena lists the table's location.
      Sid: 'TrailListing',
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: bucket,
      Condition: { StringLike: { 's3:prefix': [`${p.logsPrefix}*`] } },
    },
    {
      Sid: 'TrailBucketLocation',
      Effect: 'Allow',
      Action: ['s3:GetBucketLocation'],
      Resource: bucket,
    },
    {
      Sid: 'AthenaQueries',
      Effect: 'Allow',
      Action: [
        'athena:StartQueryExecution',
        'athena:GetQueryExecution',
        'athena:GetQueryResults',
        'athena:StopQueryExecution',
      ],
      Resource: sub('arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${AthenaWorkGroup}'),
    },
    {
      // CREATE DATABASE/TABLE IF NOT EXISTS, ALTER TABLE (projection, explicit partitions),
      // and the queries' reads of the table.
      Sid: 'AthenaCatalog',
      Effect: 'Allow',
      Action: [
        'glue:GetDatabase',
        'glue:CreateDatabase',
        'glue:GetTable',
        'glue:CreateTable',
        'glue:UpdateTable',
        'glue:GetPartition',
        'glue:GetPartitions',
        'glue:BatchGetPartition',
        'glue:CreatePartition',
        'glue:BatchCreatePartition',
      ],
      Resource: [glue('catalog'), glue(`database/${p.database}`), glue(`table/${p.database}/${p.table}`)],
    },
    {
      // Queries run without a database in their context resolve names against "default".
      Sid: 'AthenaDefaultDatabase',
      Effect: 'Allow',
      Action: ['glue:GetDatabase'],
      Resource: glue('database/default'),
    },
    {
      Sid: 'AthenaResultObjects',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      Resource: { 'Fn::Sub': '${AthenaResultsBucket.Arn}/*' },
    },
    {
      Sid: 'AthenaResultBucket',
      Effect: 'Allow',
      Action: ['s3:ListBucket', 's3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
      Resource: results,
    },
    ...(p.stackKey ? [stackKey(p, ['kms:Decrypt', 'kms:GenerateDataKey'])] : []),
  ];
}

function role(description, statements) {
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: description,
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'lambda.amazonaws.com' },
            Action: 'sts:AssumeRole',
          },
        ],
      },
      Policies: [
        {
          PolicyName: 'least-privilege',
          PolicyDocument: { Version: '2012-10-17', Statement: statements },
        },
      ],
    },
  };
}

function queuePolicy(p) {
  const statements = [];
  if (p.trigger === 'sqs') {
    statements.push({
      Sid: 'TrailBucketNotifications',
      Effect: 'Allow',
      Principal: { Service: 's3.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: arn('NotificationQueue'),
      Condition: {
        ArnLike: { 'aws:SourceArn': sub(`arn:\${AWS::Partition}:s3:::${p.bucket}`) },
        // Bucket names are global and can be re-created by anyone once deleted.
        StringEquals: { 'aws:SourceAccount': p.bucketAccount || { Ref: 'AWS::AccountId' } },
      },
    });
  }
  if (p.eventBridge) {
    statements.push({
      Sid: 'TrailObjectEvents',
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: arn('NotificationQueue'),
      Condition: { ArnEquals: { 'aws:SourceArn': arn('TrailObjectCreatedRule') } },
    });
  }
  if (!statements.length) return {};
  return {
    NotificationQueuePolicy: {
      Type: 'AWS::SQS::QueuePolicy',
      Properties: {
        Queues: [{ Ref: 'NotificationQueue' }],
        PolicyDocument: { Version: '2012-10-17', Statement: statements },
      },
    },
  };
}

function eventBridgeRule(p) {
  if (!p.eventBridge) return {};
  return {
    TrailObjectCreatedRule: {
      Type: 'AWS::Events::Rule',
      Properties: {
        Description: `New CloudTrail objects in ${p.bucket} (EventBridge notifications of the bucket)`,
        EventPattern: {
          source: ['aws.s3'],
          'detail-type': ['Object Created'],
          detail: {
            bucket: { name: [p.bucket] },
            object: { key: [{ prefix: p.objectsPrefix }] },
          },
        },
        Targets: [{ Id: 'notification-queue', Arn: arn('NotificationQueue') }],
      },
    },
  };
}

function alarmSubscription(p) {
  if (!p.alarmEmail) return {};
  return {
    AlarmEmailSubscription: {
      Type: 'AWS::SNS::Subscription',
      Properties: { TopicArn: { Ref: 'AlarmTopic' }, Protocol: 'email', Endpoint: p.alarmEmail },
    },
  };
}

// --- the security options and the scanners' exceptions (docs/security.md) ---

// A checkov check this stack does not meet, skipped in the template with the reason.
const skip = (id, comment) => ({ id, comment });
const checkov = (skips) => (skips.length ? { Metadata: { checkov: { skip: skips } } } : {});

const REASON = {
  tableKey:
    'Encrypted at rest with the AWS managed key (aws/dynamodb); a customer managed key is the kmsKeyArn option',
  queueKey:
    'Encrypted with SQS-managed SSE (SqsManagedSseEnabled), which this check does not count; a customer managed key is the kmsKeyArn option',
  logKey:
    'CloudWatch Logs encrypts every log group at rest; the lines hold alert metadata, never the HEC token; a customer managed key is the kmsKeyArn option',
  environmentKey:
    'The environment holds names and settings, never the HEC token (only its secret name), encrypted at rest by Lambda; a customer managed key is the kmsKeyArn option',
  vpc: 'VPC is the subnetIds/securityGroupIds option: it needs VPC endpoints or a NAT gateway the stack cannot create (docs/security.md)',
  accessLogs:
    'Server access logging is the accessLogsBucket option: it needs a log bucket outside this stack and costs per request',
  realtimeDlq:
    "Failed messages go to the notification queue's dead-letter queue (RedrivePolicy); a function DLQ serves only asynchronous invocations",
  realtimeDestination:
    'Asynchronous failures go to the dead-letter queue through an on-failure destination (RealtimeLambdaEvConf), which this check does not read',
  reconcileDlq:
    'The hourly event holds only its time: a failed run is retried twice and raises ReconcileErrorsAlarm, and a queue would keep just a timestamp',
  realtimeConcurrency:
    "reservedConcurrency=off: the account's concurrency limit leaves nothing to reserve (Lambda keeps 10 unreserved)",
  reconcileConcurrency:
    "reconcileReservedConcurrency=off: the account's concurrency limit leaves nothing to reserve (Lambda keeps 10 unreserved)",
  alarmTopic:
    'No alert content, only alarm names and values; alias/aws/sns cannot be used by CloudWatch and a key policy mistake would silence every alarm',
  customResource:
    "osls's custom resource that sets the trail bucket's notification, run by CloudFormation during deployments only",
};

function functionSettings(p, name) {
  const skips = [];
  const properties = {};
  if (p.stackKey) properties.KmsKeyArn = p.stackKey;
  else skips.push(skip('CKV_AWS_173', REASON.environmentKey));
  if (p.vpc) properties.VpcConfig = { SubnetIds: p.vpc.subnetIds, SecurityGroupIds: p.vpc.securityGroupIds };
  else skips.push(skip('CKV_AWS_117', REASON.vpc));
  if (name === 'Realtime') {
    skips.push(skip('CKV_AWS_116', p.trigger === 'sqs' ? REASON.realtimeDlq : REASON.realtimeDestination));
    if (p.reservedConcurrency == null) skips.push(skip('CKV_AWS_115', REASON.realtimeConcurrency));
  } else {
    skips.push(skip('CKV_AWS_116', REASON.reconcileDlq));
    if (p.reconcileReservedConcurrency == null) skips.push(skip('CKV_AWS_115', REASON.reconcileConcurrency));
  }
  return { Properties: properties, ...checkov(skips) };
}

function logGroupSettings(p) {
  if (p.stackKey) return { Properties: { KmsKeyId: p.stackKey } };
  return checkov([skip('CKV_AWS_158', REASON.logKey)]);
}

// Server access logs go to the bucket the user names, under the stack's own prefix.
function accessLogs(p, what) {
  if (!p.accessLogsBucket) return checkov([skip('CKV_AWS_18', REASON.accessLogs)]);
  return {
    Properties: {
      LoggingConfiguration: {
        DestinationBucketName: p.accessLogsBucket,
        LogFilePrefix: `cloudtrail-anomaly-${p.stage}/${what}/`,
      },
    },
  };
}

function bucketEncryption(p) {
  const byDefault = p.stackKey
    ? { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: p.stackKey }
    : { SSEAlgorithm: 'AES256' };
  return {
    ServerSideEncryptionConfiguration: [
      { ServerSideEncryptionByDefault: byDefault, ...(p.stackKey ? { BucketKeyEnabled: true } : {}) },
    ],
  };
}

function queueEncryption(p) {
  if (p.stackKey) return { Properties: { KmsMasterKeyId: p.stackKey } };
  return { Properties: { SqsManagedSseEnabled: true }, ...checkov([skip('CKV_AWS_27', REASON.queueKey)]) };
}

// Merged into resources.yml's definitions of the same resources.
function securedResources(p) {
  const table = p.stackKey
    ? { Properties: { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: p.stackKey } } }
    : { Properties: { SSESpecification: { SSEEnabled: true } }, ...checkov([skip('CKV_AWS_119', REASON.tableKey)]) };
  const results = accessLogs(p, 'athena-results');
  return {
    BaselineTable: table,
    NotificationQueue: queueEncryption(p),
    NotificationDeadLetterQueue: queueEncryption(p),
    AthenaResultsBucket: {
      ...results,
      Properties: { ...(results.Properties || {}), BucketEncryption: bucketEncryption(p) },
    },
    AthenaWorkGroup: {
      Properties: {
        WorkGroupConfiguration: {
          ResultConfiguration: {
            EncryptionConfiguration: p.stackKey
              ? { EncryptionOption: 'SSE_KMS', KmsKey: p.stackKey }
              : { EncryptionOption: 'SSE_S3' },
          },
        },
      },
    },
    AlarmTopic: checkov([skip('CKV_AWS_26', REASON.alarmTopic)]),
  };
}

// The resources osls generates itself (functions, log groups, the deployment bucket), extended.
function extensions(p) {
  const deploymentBucket = accessLogs(p, 'deployment');
  const extended = {
    RealtimeLambdaFunction: functionSettings(p, 'Realtime'),
    ReconcileLambdaFunction: functionSettings(p, 'Reconcile'),
    RealtimeLogGroup: logGroupSettings(p),
    ReconcileLogGroup: logGroupSettings(p),
    ServerlessDeploymentBucket: {
      ...deploymentBucket,
      Properties: {
        ...(deploymentBucket.Properties || {}),
        // Versioned (serverless.yml): replaced artifacts are kept 30 days, then deleted.
        LifecycleConfiguration: {
          Rules: [
            {
              Id: 'expire-replaced-artifacts',
              Status: 'Enabled',
              NoncurrentVersionExpiration: { NoncurrentDays: 30 },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            },
            { Id: 'remove-expired-delete-markers', Status: 'Enabled', ExpiredObjectDeleteMarker: true },
          ],
        },
      },
    },
  };
  if (p.trigger === 's3') {
    extended.CustomDashresourceDashexistingDashs3LambdaFunction = checkov(
      ['CKV_AWS_115', 'CKV_AWS_116', 'CKV_AWS_117'].map((id) => skip(id, REASON.customResource)),
    );
  }
  return extended;
}

module.exports = {
  ParameterError,
  NAME,
  PARAMETERS,

  // osls's `params` block: the defaults, and the stage's file (what ${param:NAME} reads).
  async params(context) {
    const p = await load(context);
    const file = await stageFile(p.stage, context.resolveVariable, []);
    const stage = Object.fromEntries(Object.entries(file).filter(([name]) => name !== 'region'));
    const defaults = Object.fromEntries(Object.entries(PARAMETERS).map(([name, spec]) => [name, spec.default]));
    return { default: defaults, [p.stage]: stage };
  },

  async region(context) {
    return (await load(context)).region;
  },

  // Checked values by name, typed: ${file(./settings.js):value.realtimeMemory}.
  async value(context) {
    return load(context);
  },

  async realtimeEvents(context) {
    const p = await load(context);
    if (p.trigger === 's3') {
      return [
        {
          s3: {
            bucket: p.bucket,
            event: 's3:ObjectCreated:*',
            rules: [{ prefix: p.objectsPrefix }, { suffix: '.json.gz' }],
            existing: true,
          },
        },
      ];
    }
    // One batch shares one ledger lookup and write per 25 objects, so larger batches cost
    // fewer DynamoDB requests (docs/benchmarks.md).
    const sqs = {
      arn: arn('NotificationQueue'),
      batchSize: p.batchSize,
      maximumBatchingWindow: p.batchWindowSeconds,
      functionResponseType: 'ReportBatchItemFailures',
    };
    if (p.pollerConcurrency != null) sqs.maximumConcurrency = p.pollerConcurrency;
    return [{ sqs }];
  },

  // Direct S3 invocations are asynchronous: after Lambda's retries, to the dead-letter queue.
  async realtimeDestinations(context) {
    const p = await load(context);
    if (p.trigger !== 's3') return null;
    return { onFailure: { type: 'sqs', arn: arn('NotificationDeadLetterQueue') } };
  },

  // AWS: at least six times the function timeout (and the batch window), so that a message is
  // not redelivered while a throttled or retried invocation still holds it.
  async visibilityTimeout(context) {
    const p = await load(context);
    return 6 * p.realtimeTimeout + p.batchWindowSeconds;
  },

  async realtimeReservedConcurrency(context) {
    return (await load(context)).reservedConcurrency;
  },

  async reconcileReservedConcurrency(context) {
    return (await load(context)).reconcileReservedConcurrency;
  },

  async resources(context) {
    const p = await load(context);
    return {
      Resources: {
        RealtimeRole: role('cloudtrail-anomaly real-time function', realtimeStatements(p)),
        ReconcileRole: role('cloudtrail-anomaly reconciliation function', reconcileStatements(p)),
        ...queuePolicy(p),
        ...eventBridgeRule(p),
        ...alarmSubscription(p),
        ...securedResources(p),
      },
      extensions: extensions(p),
    };
  },
};

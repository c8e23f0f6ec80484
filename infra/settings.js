'use strict';

// The parts of serverless.yml that depend on parameters: the real-time trigger, and each
// function's IAM role with only the statements its settings call for. Parameters are checked
// here, at package time, so that a typo fails `npm run package`, not the first invocation.
//
// Used as ${file(./settings.js):NAME}; each export receives osls's variable resolver.

// Names the functions check again at cold start come from one definition shared with the core.
const SHARED = require('../layers/core/src/cloudtrail_anomaly/names.json');
const whole = (pattern) => new RegExp(`^(?:${pattern})$`);

const NAME = {
  bucket: whole(SHARED.bucket),
  prefix: whole(SHARED.prefix),
  orgId: whole(SHARED.org_id),
  account: /^\d{12}$/,
  kmsKey: /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/,
  roleName: /^[\w+=,.@-]{1,64}$/,
  secret: /^[\w/+=.@-]{1,512}$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$/,
  ssmParameter: /^[A-Za-z0-9_.\/-]{1,2048}$/,
  glue: whole(SHARED.glue_name),
  url: /^https:\/\/[^\s]+$/,
};

class ParameterError extends Error {}

async function read(resolveVariable, name) {
  const value = await resolveVariable(`param:${name}, null`);
  return value == null ? '' : String(value).trim();
}

async function flag(resolveVariable, name) {
  const value = (await read(resolveVariable, name)).toLowerCase();
  if (['', 'false', 'no', '0'].includes(value)) return false;
  if (['true', 'yes', '1'].includes(value)) return true;
  throw new ParameterError(`param ${name}=${value}: expected true or false`);
}

function checkedValue(name, value, pattern) {
  if (value && !pattern.test(value)) {
    throw new ParameterError(`param ${name}=${value} is not valid (${pattern})`);
  }
  return value;
}

async function checked(resolveVariable, name, pattern, { required = false } = {}) {
  const value = await read(resolveVariable, name);
  if (!value && required) {
    throw new ParameterError(`param ${name} is required: --param="${name}=..."`);
  }
  return checkedValue(name, value, pattern);
}

async function parameters(resolveVariable) {
  const trigger = (await read(resolveVariable, 'trigger')) || 'sqs';
  if (!['sqs', 's3'].includes(trigger)) {
    throw new ParameterError(`param trigger=${trigger}: expected sqs or s3`);
  }
  // Slashes at either end are dropped first, as the reconciler drops them.
  const prefix = await checkedValue(
    'trailPrefix',
    (await read(resolveVariable, 'trailPrefix')).replace(/^\/+|\/+$/g, ''),
    NAME.prefix,
  );
  const eventBridge = await flag(resolveVariable, 'eventBridge');
  if (eventBridge && trigger !== 'sqs') {
    throw new ParameterError('param eventBridge=true routes events to the queue: it needs trigger=sqs');
  }
  const orgId = await checked(resolveVariable, 'orgId', NAME.orgId);
  const splunk = {
    url: await checked(resolveVariable, 'splunkUrl', NAME.url),
    secret: await checked(resolveVariable, 'splunkSecret', NAME.secret),
    parameter: await checked(resolveVariable, 'splunkParameter', NAME.ssmParameter),
    key: await checked(resolveVariable, 'splunkTokenKmsKeyArn', NAME.kmsKey),
  };
  // The sink fails the cold start on a half-configured Splunk: fail the package instead.
  if (splunk.secret && splunk.parameter) {
    throw new ParameterError('params splunkSecret and splunkParameter: set only one');
  }
  if (splunk.url && !(splunk.secret || splunk.parameter)) {
    throw new ParameterError('param splunkUrl needs the token: splunkSecret or splunkParameter');
  }
  if (!splunk.url && (splunk.secret || splunk.parameter || splunk.key)) {
    throw new ParameterError('params splunkSecret/splunkParameter/splunkTokenKmsKeyArn need splunkUrl');
  }
  const logsPrefix = `${prefix ? `${prefix}/` : ''}AWSLogs/`;
  return {
    bucket: await checked(resolveVariable, 'trailBucket', NAME.bucket, { required: true }),
    // Where CloudTrail writes: <prefix/>AWSLogs/[<org id>/]<account>/…; an organization
    // trail's objects are all under AWSLogs/<org id>/, and nothing else needs reading.
    logsPrefix,
    objectsPrefix: orgId ? `${logsPrefix}${orgId}/` : logsPrefix,
    orgId,
    bucketAccount: await checked(resolveVariable, 'trailBucketAccount', NAME.account),
    kmsKey: await checked(resolveVariable, 'trailKmsKeyArn', NAME.kmsKey),
    splunk,
    roleName: await checked(resolveVariable, 'enrichmentRoleName', NAME.roleName),
    organizations: await flag(resolveVariable, 'enrichOrganizations'),
    eventBridge,
    database: await checked(resolveVariable, 'athenaDatabase', NAME.glue),
    table: await checked(resolveVariable, 'athenaTable', NAME.glue),
    alarmEmail: await read(resolveVariable, 'alarmEmail'),
    trigger,
  };
}

// The SQS event source's batch: Lambda takes 1-10000 messages from a standard queue, and
// over 10 only with a batching window of at least a second; the window is 0-300 seconds.
// One batch shares one ledger lookup and write per 25 objects, so larger batches cost fewer
// DynamoDB requests (docs/benchmarks.md).
async function batching(resolveVariable) {
  const size = await read(resolveVariable, 'batchSize');
  const seconds = await read(resolveVariable, 'batchWindowSeconds');
  const batchSize = Number(size);
  const window = Number(seconds || 0);
  if (!/^\d+$/.test(size) || batchSize < 1 || batchSize > 10000) {
    throw new ParameterError(`param batchSize=${size}: 1-10000 messages`);
  }
  if (!/^\d*$/.test(seconds) || window > 300) {
    throw new ParameterError(`param batchWindowSeconds=${seconds}: 0-300 seconds`);
  }
  if (batchSize > 10 && window < 1) {
    throw new ParameterError(`param batchSize=${size} needs batchWindowSeconds of at least 1 (AWS: over 10 messages)`);
  }
  return { batchSize, window };
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
  if (p.kmsKey) {
    statements.push({
      Sid: 'TrailKey',
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: p.kmsKey,
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
  if (p.organizations) {
    statements.push({
      Sid: 'AccountNames',
      Effect: 'Allow',
      Action: ['organizations:ListAccounts'],
      Resource: '*', // ListAccounts has no resource-level permissions
    });
  }
  if (p.roleName) {
    statements.push({
      Sid: 'EnrichmentRoles',
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Resource: sub(`arn:\${AWS::Partition}:iam::*:role/${p.roleName}`),
    });
  }
  return statements;
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

module.exports = {
  ParameterError,
  NAME,

  async realtimeEvents({ resolveVariable }) {
    const p = await parameters(resolveVariable);
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
    const { batchSize, window } = await batching(resolveVariable);
    const sqs = {
      arn: arn('NotificationQueue'),
      batchSize,
      maximumBatchingWindow: window,
      functionResponseType: 'ReportBatchItemFailures',
    };
    const maximumConcurrency = await read(resolveVariable, 'maximumConcurrency');
    if (maximumConcurrency) sqs.maximumConcurrency = Number(maximumConcurrency);
    return [{ sqs }];
  },

  // Direct S3 invocations are asynchronous: after Lambda's retries, to the dead-letter queue.
  async realtimeDestinations({ resolveVariable }) {
    const p = await parameters(resolveVariable);
    if (p.trigger !== 's3') return null;
    return { onFailure: { type: 'sqs', arn: arn('NotificationDeadLetterQueue') } };
  },

  // AWS: at least six times the function timeout (and the batch window), so that a message is
  // not redelivered while a throttled or retried invocation still holds it.
  async visibilityTimeout({ resolveVariable }) {
    const timeout = Number(await read(resolveVariable, 'realtimeTimeout'));
    const { window } = await batching(resolveVariable);
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 900) {
      throw new ParameterError(`param realtimeTimeout=${timeout}: 1-900 seconds`);
    }
    return 6 * timeout + window;
  },

  // A message not started with less than this left is handed back to the queue; as much as the
  // timeout itself would hand every message back until it reached the dead-letter queue.
  async minRemainingSeconds({ resolveVariable }) {
    const value = await read(resolveVariable, 'minRemainingSeconds');
    const timeout = Number(await read(resolveVariable, 'realtimeTimeout'));
    const seconds = Number(value);
    if (!/^\d+$/.test(value) || !(seconds < timeout / 2)) {
      throw new ParameterError(
        `param minRemainingSeconds=${value}: whole seconds under half of realtimeTimeout=${timeout}`,
      );
    }
    return seconds;
  },

  async reconcileReservedConcurrency({ resolveVariable }) {
    const value = (await read(resolveVariable, 'reconcileReservedConcurrency')).toLowerCase();
    if (['', 'off', 'none'].includes(value)) return null;
    if (!/^[1-9]\d*$/.test(value)) {
      throw new ParameterError(`param reconcileReservedConcurrency=${value}: a count, or off`);
    }
    return Number(value);
  },

  async resources({ resolveVariable }) {
    const p = await parameters(resolveVariable);
    return {
      Resources: {
        RealtimeRole: role('cloudtrail-anomaly real-time function', realtimeStatements(p)),
        ReconcileRole: role('cloudtrail-anomaly reconciliation function', reconcileStatements(p)),
        ...queuePolicy(p),
        ...eventBridgeRule(p),
        ...alarmSubscription(p),
      },
    };
  },
};

#!/usr/bin/env bash
# Deployment check, what CI runs: `npm ci && bash scripts/check_deploy.sh`. Builds the Lambda
# zips, packages the stack for each parameter variant offline (AWS credentials and profiles
# hidden; the network is needed only for PyPI's wheels), and lints every generated
# CloudFormation template with cfn-lint: 0 errors, and 0 warnings but those infra/.cfnlintrc
# ignores, each with its reason. The templates stay in build/templates/ for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SLS=node_modules/.bin/serverless
[ -x .venv/bin/cfn-lint ] || make venv  # the dev venv (pyproject's dev extra has cfn-lint)
[ -x "$SLS" ] || npm ci --no-audit --no-fund

"$PYTHON" scripts/build_layers.py
mkdir -p build/templates

package() {  # package VARIANT PARAM...: the template as build/templates/VARIANT.json
  local variant=$1; shift
  local params=()
  for p in "$@"; do params+=("--param=$p"); done
  echo "--- package: $variant"
  (cd infra && env $(env | grep -o '^AWS_[A-Z_]*' | sed 's/^/-u /') \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
    "../$SLS" package "${params[@]}")
  cp infra/.serverless/cloudformation-template-update-stack.json "build/templates/$variant.json"
}

# Every optional statement and resource on: direct S3 trigger, organization trail, SSE-KMS,
# Splunk token in Secrets Manager under a customer managed key, enrichment, alarm e-mail, caps.
package s3-all-options \
  trailBucket=example-org-trail trailPrefix=cloudtrail orgId=o-exampleorg1 \
  trailBucketAccount=111122223333 trigger=s3 \
  trailKmsKeyArn=arn:aws:kms:us-east-1:111122223333:key/0b6b3a8e-1c1f-4c63-9d0b-5f0f8a1e2d3c \
  splunkUrl=https://splunk.example.com:8088 splunkSecret=cloudtrail-anomaly/splunk-hec-token \
  splunkTokenKmsKeyArn=arn:aws:kms:us-east-1:111122223333:key/5c1e2b7a-0d3f-4e8b-9a6c-7f2d1e0b3a4c \
  splunkIndex=security splunkMinSeverity=medium enrichOrganizations=true \
  enrichmentRoleName=CloudTrailAnomalyReadOnly alarmEmail=security@example.com \
  reservedConcurrency=20
# SQS with EventBridge as well; the token in an SSM SecureString.
package sqs-eventbridge \
  trailBucket=example-trail eventBridge=true maximumConcurrency=10 \
  splunkUrl=https://splunk.example.com:8088 splunkParameter=/cloudtrail-anomaly/hec-token
# The token's secret by ARN; no reserved concurrency (accounts limited to 10).
package sqs-secret-arn \
  trailBucket=example-trail splunkUrl=https://splunk.example.com:8088 \
  splunkSecret=arn:aws:secretsmanager:us-east-1:111122223333:secret:hec-token-AbCdEf \
  reconcileReservedConcurrency=off
# The defaults (last, so infra/.serverless/ holds them).
package default trailBucket=example-trail

echo "--- cfn-lint $(.venv/bin/cfn-lint --version)"
(cd infra && ../.venv/bin/cfn-lint -- ../build/templates/*.json)
echo "cfn-lint: 0 errors, 0 warnings (but W3005, see infra/.cfnlintrc) in $(ls build/templates/*.json | wc -l) templates"

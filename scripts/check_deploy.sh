#!/usr/bin/env bash
# Deployment check, what CI runs: `npm ci && bash scripts/check_deploy.sh`. Builds the Lambda
# zips, packages the stack for each parameter variant offline (AWS credentials and profiles
# hidden; the network is needed only for PyPI's wheels), then scans every generated
# CloudFormation template with
# - cfn-lint: 0 errors, and 0 warnings but those infra/.cfnlintrc ignores, each with its reason;
# - checkov (requirements/checkov.txt, its own locked tool in .tools/checkov/): 0 failed checks;
#   each check the stack does not meet is skipped in the template (Metadata.checkov.skip) with
#   its reason, listed in docs/security.md.
# The templates stay in build/templates/ for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SLS=node_modules/.bin/serverless
CHECKOV_VENV=.tools/checkov
[ -x .venv/bin/cfn-lint ] || make venv  # the dev venv (pyproject's dev group has cfn-lint)
[ -x "$SLS" ] || npm ci --no-audit --no-fund
# checkov pins boto3 1.35 and networkx<2.7, which uv.lock cannot hold beside moto and cfn-lint:
# it gets a venv of its own, installed with hashes from requirements/checkov.txt.
if [ ! -f "$CHECKOV_VENV/installed" ] || [ requirements/checkov.txt -nt "$CHECKOV_VENV/installed" ]; then
  [ -x .tools/bin/uv ] || make venv
  rm -rf "$CHECKOV_VENV"
  "${TOOLS_PYTHON:-python3}" -m venv "$CHECKOV_VENV"
  .tools/bin/uv pip install --no-config --quiet --python "$CHECKOV_VENV/bin/python" \
    --require-hashes -r requirements/checkov.txt
  cp requirements/checkov.txt "$CHECKOV_VENV/installed"
fi

"$PYTHON" scripts/build_layers.py
rm -rf build/templates && mkdir -p build/templates

package() {  # package VARIANT PARAM...: the template as build/templates/VARIANT.json
  local variant=$1; shift
  local params=()
  for p in "$@"; do params+=("--param=$p"); done
  echo "--- package: $variant"
  (cd infra && env $(env | grep -o '^AWS_[A-Z_]*' | sed 's/^/-u /') \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
    "../$SLS" package --stage ci --region us-east-1 "${params[@]}")
  cp infra/.serverless/cloudformation-template-update-stack.json "build/templates/$variant.json"
}

KEY=arn:aws:kms:us-east-1:111122223333:key
# Every optional statement and resource on: direct S3 trigger, organization trail, SSE-KMS,
# Splunk token in Secrets Manager under a customer managed key, enrichment, alarm e-mail, caps,
# and every security option (the stack's key, VPC, access logs).
package s3-all-options \
  trailBucket=example-org-trail trailPrefix=cloudtrail orgId=o-exampleorg1 \
  trailBucketAccount=111122223333 trigger=s3 \
  trailKmsKeyArn=$KEY/0b6b3a8e-1c1f-4c63-9d0b-5f0f8a1e2d3c \
  splunkUrl=https://splunk.example.com:8088 splunkSecret=cloudtrail-anomaly/splunk-hec-token \
  splunkTokenKmsKeyArn=$KEY/5c1e2b7a-0d3f-4e8b-9a6c-7f2d1e0b3a4c \
  splunkIndex=security splunkMinSeverity=medium enrichOrganizations=true \
  enrichmentRoleName=CloudTrailAnomalyReadOnly alarmEmail=security@example.com \
  reservedConcurrency=20 kmsKeyArn=$KEY/9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a \
  subnetIds=subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788 securityGroupIds=sg-0123456789abcdef0 \
  accessLogsBucket=example-access-logs
# The security options with the queue: the stack's key, VPC, access logs; enrichment limited to
# a list of accounts.
package sqs-secured \
  trailBucket=example-trail kmsKeyArn=$KEY/9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a \
  subnetIds=subnet-0a1b2c3d4e5f60718 securityGroupIds=sg-0123456789abcdef0 \
  accessLogsBucket=example-access-logs trailAccounts=111122223333,444455556666 \
  enrichmentRoleName=CloudTrailAnomalyReadOnly
# SQS with EventBridge as well; the token in an SSM SecureString.
package sqs-eventbridge \
  trailBucket=example-trail eventBridge=true maximumConcurrency=5 \
  splunkUrl=https://splunk.example.com:8088 splunkParameter=/cloudtrail-anomaly/hec-token
# The token's secret by ARN; nothing reserved (accounts limited to 10 concurrent executions).
package sqs-secret-arn \
  trailBucket=example-trail splunkUrl=https://splunk.example.com:8088 \
  splunkSecret=arn:aws:secretsmanager:us-east-1:111122223333:secret:hec-token-AbCdEf \
  reservedConcurrency=off reconcileReservedConcurrency=off
# The defaults (last, so infra/.serverless/ holds them).
package default trailBucket=example-trail

templates=(build/templates/*.json)
echo "--- cfn-lint $(.venv/bin/cfn-lint --version)"
(cd infra && ../.venv/bin/cfn-lint -- "${templates[@]/#/../}")
echo "cfn-lint: 0 errors, 0 warnings (but W3005, see infra/.cfnlintrc) in ${#templates[@]} templates"

echo "--- checkov $("$CHECKOV_VENV/bin/checkov" --version)"
for template in "${templates[@]}"; do
  # --skip-download: offline, no Prisma Cloud guidelines; exits non-zero on any failed check.
  "$CHECKOV_VENV/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
    -o json -f "$template" > "${template%.json}.checkov.json" || {
    "$CHECKOV_VENV/bin/checkov" --quiet --compact --skip-download --framework cloudformation -f "$template"
    echo "checkov: failed checks in $template (fix, or skip in the template with the reason)" >&2
    exit 1
  }
  "$PYTHON" - "${template%.json}.checkov.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))["summary"]
print(f"checkov {sys.argv[1].split('/')[-1].split('.')[0]}: {summary['passed']} passed, "
      f"{summary['failed']} failed, {summary['skipped']} skipped (reasons in the template)")
PY
done

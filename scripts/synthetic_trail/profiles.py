"""The population as data: user agents, people, account names, attacker addresses, and the
fixed action sets each kind of principal works through (`world.py` turns them into principals).
"""

from __future__ import annotations

from synthetic_trail.actions import Action, parse_actions

UA_CLI = (
    "aws-cli/2.17.{v} md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#{cmd}"
)
UA_CLI_LINUX = (
    "aws-cli/2.15.{v} md/awscrt#0.19.19 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 "
    "lang/python#3.11.8 md/pyimpl#CPython exec-env/GitHubActions cfg/retry-mode#standard "
    "md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#{cmd}"
)
UA_BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
UA_BOTO_LAMBDA = (
    "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10.219-229.866.amzn2.x86_64 "
    "md/arch#x86_64 lang/python#3.12.4 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
    "cfg/retry-mode#legacy Botocore/1.34.{v}"
)
UA_GO_ECS = (
    "aws-sdk-go-v2/1.30.{v} os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 "
    "exec-env/AWS_ECS_FARGATE api/{svc}#1.{v}.0"
)
UA_SSM_AGENT = "aws-sdk-go/1.44.{v} (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.{v}.0"
UA_TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.8.{v} (+https://www.terraform.io) "
    "terraform-provider-aws/5.5{v}.0 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64"
)
UA_DATADOG = "aws-sdk-go/1.50.{v} (go1.21.10; linux; amd64) datadog-aws-integration"
UA_PROWLER = (
    "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.11.9 "
    "md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard Botocore/1.34.{v} "
    "prowler/4.3.{v}"
)
UA_BOTO_SERVER = (
    "Boto3/1.26.{v} md/Botocore#1.29.{v} ua/2.0 os/linux#5.15.0 md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.29.{v}"
)
UA_ATTACKER_CLI = (
    "aws-cli/1.22.34 Python/3.11.8 Linux/6.6.9-amd64 botocore/1.24.34"  # kali's packaged CLI
)
UA_ATTACKER_BOTO = (
    "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#6.5.0-kali3-amd64 md/arch#x86_64 "
    "lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.57"
)
# Attacker and office addresses come from the documentation ranges of RFC 5737.
ATTACKER_IPS = ("192.0.2.44", "192.0.2.171", "192.0.2.203", "192.0.2.18", "192.0.2.97")
SLOW_RECON_IP = "203.0.113.58"  # another documentation network than the attacks above

PEOPLE = (
    "alice.nguyen", "bob.schmidt", "carol.okafor", "dan.kowalski", "erin.garcia",
    "farid.haddad", "grace.lin", "hugo.martin", "ines.costa", "jamal.wright", "kenji.sato",
    "lena.novak", "mateo.rossi", "nora.jensen", "omar.aziz", "priya.raman",
)  # fmt: skip
EMAIL_DOMAIN = "example.com"
ACCOUNT_NAMES = (
    "management", "prod", "staging", "dev", "security", "data", "sandbox", "shared-services",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Behaviour profiles: the fixed action sets of the steady population.

TERRAFORM = parse_actions(
    """
    sts:GetCallerIdentity iam:GetRole iam:GetRolePolicy iam:ListRolePolicies
    iam:ListAttachedRolePolicies iam:GetPolicy iam:GetPolicyVersion
    iam:ListInstanceProfilesForRole iam:GetOpenIDConnectProvider s3:GetBucketPolicy
    s3:GetBucketAcl s3:GetBucketVersioning s3:GetBucketEncryption s3:GetBucketLogging
    s3:GetBucketTagging s3:GetBucketPublicAccessBlock s3:GetBucketOwnershipControls
    ec2:DescribeVpcs ec2:DescribeSubnets ec2:DescribeSecurityGroups ec2:DescribeRouteTables
    ec2:DescribeNatGateways ec2:DescribeVpcAttribute ec2:DescribeNetworkAcls
    ec2:DescribeInternetGateways kms:DescribeKey kms:GetKeyPolicy kms:GetKeyRotationStatus
    kms:ListResourceTags dynamodb:DescribeTable dynamodb:DescribeContinuousBackups
    dynamodb:DescribeTimeToLive lambda:GetFunction20150331v2 lambda:GetPolicy20150331v2
    lambda:ListVersionsByFunction20150331 logs:DescribeLogGroups logs:ListTagsForResource
    sns:GetTopicAttributes monitoring:DescribeAlarms route53:GetHostedZone
    route53:ListResourceRecordSets acm:DescribeCertificate
    elasticloadbalancing:DescribeLoadBalancers elasticloadbalancing:DescribeTargetGroups
    iam:PutRolePolicy iam:TagRole s3:PutBucketTagging ec2:AuthorizeSecurityGroupIngress
    ec2:CreateTags lambda:UpdateFunctionConfiguration20150331v2 dynamodb:UpdateTable
    logs:PutRetentionPolicy monitoring:PutMetricAlarm ssm:PutParameter
    """
)
GITHUB_DEPLOY = parse_actions(
    """
    sts:GetCallerIdentity ecr:GetAuthorizationToken ecr:BatchCheckLayerAvailability
    ecr:DescribeImages ecs:DescribeServices ecs:DescribeTaskDefinition ecs:ListTasks
    ecs:DescribeTasks lambda:GetFunctionConfiguration20150331v2 cloudfront:GetInvalidation
    cloudformation:DescribeStacks cloudformation:DescribeChangeSet
    cloudformation:DescribeStackEvents ssm:GetParameter ecr:InitiateLayerUpload
    ecr:UploadLayerPart ecr:CompleteLayerUpload ecr:PutImage ecs:RegisterTaskDefinition
    ecs:UpdateService lambda:UpdateFunctionCode20150331v2 lambda:PublishVersion20150331
    lambda:UpdateAlias20150331 s3:PutObject cloudfront:CreateInvalidation
    cloudformation:CreateChangeSet cloudformation:ExecuteChangeSet
    """
)
APP_PROFILES: dict[str, tuple[str, list[Action]]] = {
    "orders-api": (
        "lambda",
        parse_actions(
            "dynamodb:DescribeTable kms:Decrypt secretsmanager:GetSecretValue ssm:GetParameter "
            "s3:PutObject s3:GetObject states:StartExecution logs:CreateLogStream"
        ),
    ),
    "image-resizer": (
        "lambda",
        parse_actions(
            "s3:GetObject s3:PutObject kms:GenerateDataKey kms:Decrypt rekognition:DetectLabels "
            "logs:CreateLogStream"
        ),
    ),
    "billing-webhook": (
        "lambda",
        parse_actions(
            "secretsmanager:GetSecretValue kms:Decrypt dynamodb:DescribeTable ses:SendEmail "
            "logs:CreateLogStream sts:AssumeRole"
        ),
    ),
    "report-generator": (
        "lambda",
        parse_actions(
            "athena:StartQueryExecution athena:GetQueryExecution athena:GetQueryResults "
            "glue:GetTable glue:GetDatabase s3:GetObject s3:PutObject kms:GenerateDataKey "
            "logs:CreateLogStream"
        ),
    ),
    "checkout-service": (
        "ecs",
        parse_actions(
            "secretsmanager:GetSecretValue kms:Decrypt ssm:GetParameters s3:GetObject "
            "dynamodb:DescribeTable sqs:GetQueueUrl"
        ),
    ),
    "search-indexer": (
        "ecs",
        parse_actions("es:DescribeDomain s3:GetObject kms:Decrypt ssm:GetParameter es:ListTags"),
    ),
}
INSTANCE_ROLE = parse_actions(
    "ssm:UpdateInstanceInformation ssm:ListInstanceAssociations ec2messages:GetMessages "
    "ec2messages:AcknowledgeMessage ec2:DescribeTags s3:PutObject logs:CreateLogStream"
)
IAM_USER_PROFILES: dict[str, list[Action]] = {
    "backup-sync": parse_actions(
        "ec2:DescribeVolumes ec2:DescribeSnapshots s3:GetBucketLocation ec2:CreateSnapshot "
        "ec2:CreateTags ec2:DeleteSnapshot s3:PutObject"
    ),
    "legacy-etl": parse_actions(
        "s3:GetBucketLocation s3:GetObject glue:GetJobRun athena:GetQueryExecution "
        "s3:PutObject glue:StartJobRun athena:StartQueryExecution"
    ),
    "jenkins-deployer": parse_actions(
        "ecr:GetAuthorizationToken ecr:BatchCheckLayerAvailability ecs:DescribeServices "
        "ecr:PutImage ecs:UpdateService s3:PutObject"
    ),
}
SSO_ROLE_POOLS: dict[str, list[Action]] = {
    "AdministratorAccess": parse_actions(
        """
        signin:ConsoleLogin sts:GetCallerIdentity iam:ListRoles iam:GetRole iam:ListUsers
        iam:ListPolicies iam:GetAccountSummary ec2:DescribeInstances ec2:DescribeSecurityGroups
        ec2:DescribeVpcs s3:ListBuckets s3:GetBucketPolicy s3:GetBucketLocation
        cloudtrail:LookupEvents cloudtrail:DescribeTrails monitoring:DescribeAlarms
        monitoring:GetMetricData logs:DescribeLogGroups logs:StartQuery
        lambda:ListFunctions20150331 ecs:ListClusters ecs:DescribeServices
        rds:DescribeDBInstances cloudformation:DescribeStacks cloudformation:ListStacks
        health:DescribeEventAggregates ec2:StartInstances ec2:StopInstances ssm:StartSession
        iam:UpdateAssumeRolePolicy
        """
    ),
    "ReadOnlyAccess": parse_actions(
        """
        signin:ConsoleLogin sts:GetCallerIdentity ec2:DescribeInstances ec2:DescribeVolumes
        s3:ListBuckets s3:GetBucketLocation monitoring:GetMetricData monitoring:DescribeAlarms
        monitoring:ListDashboards monitoring:GetDashboard logs:DescribeLogGroups
        logs:DescribeLogStreams logs:StartQuery cloudtrail:LookupEvents
        lambda:ListFunctions20150331 lambda:GetFunction20150331v2 dynamodb:ListTables
        dynamodb:DescribeTable rds:DescribeDBInstances ecs:ListClusters ecs:ListServices
        ecs:DescribeServices cloudformation:DescribeStacks
        """
    ),
    "PowerUserAccess": parse_actions(
        """
        signin:ConsoleLogin sts:GetCallerIdentity ec2:DescribeInstances s3:ListBuckets
        s3:GetObject monitoring:GetMetricData monitoring:DescribeAlarms logs:DescribeLogGroups
        logs:DescribeLogStreams logs:StartQuery lambda:ListFunctions20150331
        lambda:GetFunction20150331v2 dynamodb:DescribeTable ecs:ListServices
        ecs:DescribeServices ssm:GetParameter cloudformation:DescribeStacks
        lambda:UpdateFunctionConfiguration20150331v2 ecs:UpdateService ssm:StartSession
        ssm:TerminateSession ssm:PutParameter s3:PutObject ec2:RebootInstances
        """
    ),
}
# Services no steady human uses: what people "try" in the live phase.
EXPLORATION: tuple[tuple[str, list[Action]], ...] = (
    ("bedrock", parse_actions("bedrock:ListFoundationModels bedrock:ListCustomModels "
                              "bedrock:GetModelInvocationLoggingConfiguration")),
    ("athena", parse_actions("athena:ListWorkGroups athena:ListDataCatalogs athena:GetWorkGroup")),
    ("eks", parse_actions("eks:ListClusters eks:DescribeCluster eks:ListNodegroups")),
    ("sagemaker", parse_actions("sagemaker:ListDomains sagemaker:ListNotebookInstances")),
    ("appsync", parse_actions("appsync:ListGraphqlApis")),
)  # fmt: skip
DATADOG = parse_actions(
    """
    ec2:DescribeInstances ec2:DescribeVolumes ec2:DescribeSecurityGroups rds:DescribeDBInstances
    rds:ListTagsForResource elasticloadbalancing:DescribeLoadBalancers
    elasticloadbalancing:DescribeTags lambda:ListFunctions20150331 lambda:ListTags20170331
    dynamodb:ListTables dynamodb:DescribeTable dynamodb:ListTagsOfResource
    monitoring:GetMetricData monitoring:ListMetrics tag:GetResources ecs:ListClusters
    ecs:DescribeClusters sqs:ListQueues sns:ListTopics es:ListDomainNames
    health:DescribeEvents cloudfront:ListDistributions s3:ListBuckets
    """
)
PROWLER = parse_actions(
    """
    sts:GetCallerIdentity iam:GetAccountPasswordPolicy iam:GenerateCredentialReport
    iam:GetCredentialReport iam:ListUsers iam:ListRoles iam:ListPolicies iam:GetAccountSummary
    iam:ListMFADevices iam:ListAccessKeys iam:ListServerCertificates s3:ListBuckets
    s3:GetBucketPolicy s3:GetBucketAcl s3:GetBucketEncryption s3:GetBucketPublicAccessBlock
    s3:GetBucketVersioning s3:GetBucketLogging ec2:DescribeSecurityGroups ec2:DescribeInstances
    ec2:DescribeVolumes ec2:DescribeSnapshots ec2:DescribeFlowLogs ec2:DescribeVpcs
    ec2:GetEbsEncryptionByDefault cloudtrail:DescribeTrails cloudtrail:GetTrailStatus
    cloudtrail:GetEventSelectors guardduty:ListDetectors guardduty:GetDetector
    config:DescribeConfigurationRecorders config:DescribeConfigurationRecorderStatus
    kms:ListKeys kms:GetKeyRotationStatus kms:DescribeKey securityhub:DescribeHub
    access-analyzer:ListAnalyzers rds:DescribeDBInstances lambda:ListFunctions20150331
    account:GetAlternateContact
    """
)
CONFIG_SLR = parse_actions(
    "ec2:DescribeInstances ec2:DescribeSecurityGroups ec2:DescribeVpcs ec2:DescribeSubnets "
    "ec2:DescribeNetworkInterfaces ec2:DescribeVolumes iam:GetRole iam:ListRolePolicies "
    "iam:GetAccountAuthorizationDetails s3:GetBucketPolicy lambda:GetFunction20150331v2 "
    "rds:DescribeDBInstances"
)
AUTOSCALING_SLR = parse_actions(
    "ec2:DescribeInstances ec2:RunInstances ec2:TerminateInstances "
    "elasticloadbalancing:RegisterTargets elasticloadbalancing:DeregisterTargets"
)
ROOT_BILLING = parse_actions(
    "signin:ConsoleLogin ce:GetCostAndUsage ce:GetCostForecast organizations:ListAccounts "
    "account:GetContactInformation"
)

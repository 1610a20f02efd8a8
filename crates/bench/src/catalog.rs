//! The services and actions the generator draws from, with weights shaped like a busy
//! production organization's CloudTrail: STS, KMS and EC2 describes dominate, writes are
//! rare, S3 object reads and Lambda invokes form a small share of data events.
//!
//! Request and response bodies are JSON templates in CloudTrail's own shapes. A `$word`
//! placeholder is replaced when a record is written (see `generator::render`); every value
//! substituted is plain ASCII without quotes or backslashes, so the output stays valid JSON.

/// The AWS services in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Sts,
    Kms,
    Ec2,
    S3,
    Iam,
    Lambda,
    DynamoDb,
    Ssm,
    SecretsManager,
    CloudTrail,
    Logs,
    Rds,
    Ecr,
    Sns,
    Sqs,
}

/// What kind of resource an action works on; names the resource pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceKind {
    Role,
    Key,
    Instance,
    Bucket,
    Function,
    Table,
    Parameter,
    Secret,
    Trail,
    LogGroup,
    DbInstance,
    Repository,
    Topic,
    Queue,
}

impl ResourceKind {
    /// The `type` CloudTrail writes in `resources[]`.
    pub(crate) fn cloudformation_type(self) -> &'static str {
        match self {
            ResourceKind::Role => "AWS::IAM::Role",
            ResourceKind::Key => "AWS::KMS::Key",
            ResourceKind::Instance => "AWS::EC2::Instance",
            ResourceKind::Bucket => "AWS::S3::Bucket",
            ResourceKind::Function => "AWS::Lambda::Function",
            ResourceKind::Table => "AWS::DynamoDB::Table",
            ResourceKind::Parameter => "AWS::SSM::Parameter",
            ResourceKind::Secret => "AWS::SecretsManager::Secret",
            ResourceKind::Trail => "AWS::CloudTrail::Trail",
            ResourceKind::LogGroup => "AWS::Logs::LogGroup",
            ResourceKind::DbInstance => "AWS::RDS::DBInstance",
            ResourceKind::Repository => "AWS::ECR::Repository",
            ResourceKind::Topic => "AWS::SNS::Topic",
            ResourceKind::Queue => "AWS::SQS::Queue",
        }
    }
}

impl Service {
    /// `eventSource`.
    pub(crate) fn event_source(self) -> &'static str {
        match self {
            Service::Sts => "sts.amazonaws.com",
            Service::Kms => "kms.amazonaws.com",
            Service::Ec2 => "ec2.amazonaws.com",
            Service::S3 => "s3.amazonaws.com",
            Service::Iam => "iam.amazonaws.com",
            Service::Lambda => "lambda.amazonaws.com",
            Service::DynamoDb => "dynamodb.amazonaws.com",
            Service::Ssm => "ssm.amazonaws.com",
            Service::SecretsManager => "secretsmanager.amazonaws.com",
            Service::CloudTrail => "cloudtrail.amazonaws.com",
            Service::Logs => "logs.amazonaws.com",
            Service::Rds => "rds.amazonaws.com",
            Service::Ecr => "ecr.amazonaws.com",
            Service::Sns => "sns.amazonaws.com",
            Service::Sqs => "sqs.amazonaws.com",
        }
    }

    /// The service prefix of IAM actions and endpoint host names.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::DynamoDb => "dynamodb",
            Service::CloudTrail => "cloudtrail",
            other => other.event_source().trim_end_matches(".amazonaws.com"),
        }
    }

    /// IAM is a global service whose events CloudTrail records in us-east-1.
    pub(crate) fn is_global(self) -> bool {
        self == Service::Iam
    }

    /// The eventVersion this service's records carry today.
    pub(crate) fn event_version(self) -> &'static str {
        match self {
            Service::S3 | Service::Ec2 | Service::Sts => "1.10",
            Service::Iam | Service::Ssm | Service::CloudTrail => "1.11",
            _ => "1.09",
        }
    }

    pub(crate) fn resource_kind(self) -> ResourceKind {
        match self {
            Service::Sts | Service::Iam => ResourceKind::Role,
            Service::Kms => ResourceKind::Key,
            Service::Ec2 => ResourceKind::Instance,
            Service::S3 => ResourceKind::Bucket,
            Service::Lambda => ResourceKind::Function,
            Service::DynamoDb => ResourceKind::Table,
            Service::Ssm => ResourceKind::Parameter,
            Service::SecretsManager => ResourceKind::Secret,
            Service::CloudTrail => ResourceKind::Trail,
            Service::Logs => ResourceKind::LogGroup,
            Service::Rds => ResourceKind::DbInstance,
            Service::Ecr => ResourceKind::Repository,
            Service::Sns => ResourceKind::Topic,
            Service::Sqs => ResourceKind::Queue,
        }
    }

    /// The error code and message of a failed lookup of a missing resource.
    pub(crate) fn not_found_error(self) -> (&'static str, &'static str) {
        match self {
            Service::Sts => ("ExpiredTokenException", "The security token included in the request is expired"),
            Service::Kms => ("NotFoundException", "Alias $arn is not found."),
            Service::Ec2 => ("Client.InvalidInstanceID.NotFound", "The instance ID '$name' does not exist"),
            Service::S3 => ("NoSuchBucketPolicy", "The bucket policy does not exist"),
            Service::Iam => ("NoSuchEntityException", "The role with name $name cannot be found."),
            Service::Lambda => ("ResourceNotFoundException", "Function not found: $arn"),
            Service::DynamoDb => ("ResourceNotFoundException", "Requested resource not found: Table: $name not found"),
            Service::Ssm => ("ParameterNotFound", "Parameter $name not found."),
            Service::SecretsManager => {
                ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
            }
            Service::CloudTrail => ("TrailNotFoundException", "Unknown trail: $arn for the user: $account"),
            Service::Logs => ("ResourceAlreadyExistsException", "The specified log stream already exists"),
            Service::Rds => ("DBInstanceNotFound", "DBInstance $name not found."),
            Service::Ecr => (
                "RepositoryNotFoundException",
                "The repository with name '$name' does not exist in the registry with id '$account'",
            ),
            Service::Sns => ("NotFoundException", "Topic does not exist"),
            Service::Sqs => ("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist."),
        }
    }
}

/// One API action and how often it is called.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Action {
    pub(crate) service: Service,
    pub(crate) name: &'static str,
    /// Relative frequency; the weights of all actions sum to about 1,000.
    pub(crate) weight: f64,
    pub(crate) read_only: bool,
    /// A data event (`eventCategory` `Data`) rather than a management event.
    pub(crate) data: bool,
    /// Whether CloudTrail lists the resource in `resources[]`.
    pub(crate) resources: bool,
    /// Share of calls made by an AWS service on the caller's behalf (`invokedBy`).
    pub(crate) via_service: f64,
    pub(crate) request: &'static str,
    pub(crate) response: &'static str,
}

const NULL: &str = "null";

const fn read(service: Service, name: &'static str, weight: f64, request: &'static str) -> Action {
    Action {
        service,
        name,
        weight,
        read_only: true,
        data: false,
        resources: false,
        via_service: 0.0,
        request,
        response: NULL,
    }
}

const fn write(
    service: Service,
    name: &'static str,
    weight: f64,
    request: &'static str,
    response: &'static str,
) -> Action {
    Action { read_only: false, response, ..read(service, name, weight, request) }
}

impl Action {
    const fn listing_resources(self) -> Action {
        Action { resources: true, ..self }
    }

    const fn data_event(self) -> Action {
        Action { data: true, resources: true, ..self }
    }

    const fn with_response(self, response: &'static str) -> Action {
        Action { response, ..self }
    }

    const fn via_service(self, share: f64) -> Action {
        Action { via_service: share, ..self }
    }
}

use Service::*;

/// The action table. Order does not matter; weights do.
pub(crate) static ACTIONS: &[Action] = &[
    // STS: role assumption by workloads, much of it by services on their behalf.
    read(Sts, "AssumeRole", 62.0, r#"{"roleArn":"$arn","roleSessionName":"$session","durationSeconds":3600}"#)
        .with_response(r#"{"credentials":{"accessKeyId":"$akid","sessionToken":"$token","expiration":"$expiry"},"assumedRoleUser":{"assumedRoleId":"AROA$hex17:$session","arn":"arn:aws:sts::$account:assumed-role/$name/$session"}}"#)
        .listing_resources()
        .via_service(0.5),
    read(Sts, "GetCallerIdentity", 22.0, NULL),
    read(Sts, "AssumeRoleWithWebIdentity", 5.0, r#"{"roleArn":"$arn","roleSessionName":"$session","durationSeconds":3600}"#)
        .with_response(r#"{"credentials":{"accessKeyId":"$akid","sessionToken":"$token","expiration":"$expiry"},"subjectFromWebIdentityToken":"system:serviceaccount:$word:$word-sa","assumedRoleUser":{"assumedRoleId":"AROA$hex17:$session","arn":"arn:aws:sts::$account:assumed-role/$name/$session"},"provider":"arn:aws:iam::$account:oidc-provider/oidc.eks.$region.amazonaws.com/id/$hex32","audience":"sts.amazonaws.com"}"#)
        .listing_resources(),
    read(Sts, "GetSessionToken", 1.5, r#"{"durationSeconds":43200}"#)
        .with_response(r#"{"credentials":{"accessKeyId":"$akid","sessionToken":"$token","expiration":"$expiry"}}"#),
    // KMS: envelope encryption behind S3, Secrets Manager, EBS and the SDKs.
    read(Kms, "Decrypt", 48.0, r#"{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{"aws:secretsmanager:arn":"arn:aws:secretsmanager:$region:$account:secret:$word/$word-$hex6"}}"#)
        .listing_resources()
        .via_service(0.4),
    read(Kms, "GenerateDataKey", 26.0, r#"{"keyId":"$arn","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::$word-$account/$objectkey"},"keySpec":"AES_256"}"#)
        .listing_resources()
        .via_service(0.4),
    read(Kms, "Encrypt", 4.0, r#"{"keyId":"$arn","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#).listing_resources(),
    read(Kms, "DescribeKey", 6.0, r#"{"keyId":"$arn"}"#).listing_resources(),
    read(Kms, "ListAliases", 1.5, r#"{"limit":100}"#),
    read(Kms, "ListKeys", 0.8, NULL),
    read(Kms, "GetKeyPolicy", 0.8, r#"{"keyId":"$arn","policyName":"default"}"#).listing_resources(),
    read(Kms, "GetKeyRotationStatus", 0.8, r#"{"keyId":"$arn"}"#).listing_resources(),
    write(Kms, "CreateGrant", 4.0, r#"{"keyId":"$arn","granteePrincipal":"arn:aws:iam::$account:role/$word-exec","operations":["Decrypt","GenerateDataKeyWithoutPlaintext"],"constraints":{"encryptionContextSubset":{"aws:ebs:id":"vol-$hex17"}}}"#, r#"{"grantId":"$hex32$hex32","keyId":"$arn"}"#)
        .listing_resources(),
    write(Kms, "RetireGrant", 3.0, r#"{"keyId":"$arn","grantId":"$hex32$hex32"}"#, NULL).listing_resources(),
    write(Kms, "ScheduleKeyDeletion", 0.03, r#"{"keyId":"$arn","pendingWindowInDays":30}"#, r#"{"keyId":"$arn","deletionDate":"$expiry","keyState":"PendingDeletion","pendingWindowInDays":30}"#)
        .listing_resources(),
    write(Kms, "PutKeyPolicy", 0.05, r#"{"keyId":"$arn","policyName":"default","policy":"{\n  \"Version\" : \"2012-10-17\",\n  \"Statement\" : [ {\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {\n      \"AWS\" : \"arn:aws:iam::$account:root\"\n    },\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  } ]\n}","bypassPolicyLockoutSafetyCheck":false}"#, NULL)
        .listing_resources(),
    // EC2: describes from consoles, autoscalers, Terraform plans and Kubernetes controllers.
    read(Ec2, "DescribeInstances", 30.0, r#"{"instancesSet":{},"filterSet":{"items":[{"name":"tag:aws:autoscaling:groupName","valueSet":{"items":[{"value":"$word-asg"}]}},{"name":"instance-state-name","valueSet":{"items":[{"value":"running"},{"value":"pending"}]}}]}}"#),
    read(Ec2, "DescribeInstanceStatus", 7.0, r#"{"instancesSet":{"items":[{"instanceId":"$name"}]},"filterSet":{},"includeAllInstances":true}"#),
    read(Ec2, "DescribeSecurityGroups", 7.0, r#"{"securityGroupSet":{},"securityGroupIdSet":{"items":[{"groupId":"sg-$hex17"}]},"filterSet":{}}"#),
    read(Ec2, "DescribeSubnets", 5.0, r#"{"subnetSet":{},"filterSet":{"items":[{"name":"vpc-id","valueSet":{"items":[{"value":"vpc-$hex17"}]}}]}}"#),
    read(Ec2, "DescribeVpcs", 3.0, r#"{"vpcSet":{"items":[{"vpcId":"vpc-$hex17"}]},"filterSet":{}}"#),
    read(Ec2, "DescribeVolumes", 5.0, r#"{"volumeSet":{},"filterSet":{"items":[{"name":"attachment.instance-id","valueSet":{"items":[{"value":"$name"}]}}]}}"#),
    read(Ec2, "DescribeSnapshots", 2.0, r#"{"snapshotSet":{},"ownersSet":{"items":[{"owner":"self"}]},"sharedUsersSet":{},"filterSet":{},"maxResults":1000}"#),
    read(Ec2, "DescribeImages", 3.0, r#"{"executableBySet":{},"imagesSet":{"items":[{"imageId":"ami-$hex17"}]},"ownersSet":{},"filterSet":{}}"#),
    read(Ec2, "DescribeNetworkInterfaces", 7.0, r#"{"networkInterfaceIdSet":{},"filterSet":{"items":[{"name":"attachment.instance-id","valueSet":{"items":[{"value":"$name"}]}}]}}"#),
    read(Ec2, "DescribeTags", 3.0, r#"{"filterSet":{"items":[{"name":"resource-id","valueSet":{"items":[{"value":"$name"}]}}]}}"#),
    read(Ec2, "DescribeAvailabilityZones", 2.5, r#"{"availabilityZoneSet":{},"availabilityZoneIdSet":{}}"#),
    read(Ec2, "DescribeRegions", 1.5, r#"{"regionSet":{},"allRegions":false}"#),
    read(Ec2, "DescribeLaunchTemplateVersions", 1.5, r#"{"DescribeLaunchTemplateVersionsRequest":{"LaunchTemplateId":"lt-$hex17","LaunchTemplateVersion":{"tag":1,"content":"$Latest"}}}"#),
    write(Ec2, "CreateTags", 18.0, r#"{"resourcesSet":{"items":[{"resourceId":"$name"}]},"tagSet":{"items":[{"key":"Name","value":"$word-$word"},{"key":"team","value":"$word"}]}}"#, r#"{"requestId":"$uuid","_return":true}"#),
    write(Ec2, "CreateNetworkInterface", 14.0, r#"{"subnetId":"subnet-$hex17","description":"aws-K8S-$name","groupSet":{"items":[{"groupId":"sg-$hex17"}]},"privateIpAddressesSet":{},"ipv6AddressCount":0,"clientToken":"$uuid"}"#, r#"{"requestId":"$uuid","networkInterface":{"networkInterfaceId":"eni-$hex17","subnetId":"subnet-$hex17","vpcId":"vpc-$hex17","availabilityZone":"$regiona","description":"aws-K8S-$name","ownerId":"$account","requesterManaged":false,"status":"pending","macAddress":"0a:$hex2:$hex2:$hex2:$hex2:$hex2","privateIpAddress":"10.$n.$n.$n","sourceDestCheck":true,"interfaceType":"interface","groupSet":{"items":[{"groupId":"sg-$hex17","groupName":"eks-cluster-sg-$word"}]},"tagSet":{}}}"#),
    write(Ec2, "DeleteNetworkInterface", 13.0, r#"{"networkInterfaceId":"eni-$hex17"}"#, r#"{"requestId":"$uuid","_return":true}"#),
    write(Ec2, "RunInstances", 0.6, r#"{"instancesSet":{"items":[{"imageId":"ami-$hex17","minCount":1,"maxCount":1}]},"instanceType":"m7i.large","blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false,"disableApiStop":false,"clientToken":"$uuid","launchTemplate":{"launchTemplateId":"lt-$hex17","version":"$n"}}"#, r#"{"requestId":"$uuid","reservationId":"r-$hex17","ownerId":"$account","groupSet":{},"instancesSet":{"items":[{"instanceId":"$name","imageId":"ami-$hex17","currentInstanceBootMode":"uefi","instanceState":{"code":0,"name":"pending"},"privateDnsName":"ip-10-$n-$n-$n.$region.compute.internal","amiLaunchIndex":0,"productCodes":{},"instanceType":"m7i.large","launchTime":$epochms,"placement":{"availabilityZone":"$regiona","tenancy":"default"},"monitoring":{"state":"disabled"},"subnetId":"subnet-$hex17","vpcId":"vpc-$hex17","privateIpAddress":"10.$n.$n.$n","stateReason":{"code":"pending","message":"pending"},"architecture":"x86_64","rootDeviceType":"ebs","rootDeviceName":"/dev/xvda","blockDeviceMapping":{},"virtualizationType":"hvm","clientToken":"$uuid","hypervisor":"xen","networkInterfaceSet":{"items":[{"networkInterfaceId":"eni-$hex17","subnetId":"subnet-$hex17","vpcId":"vpc-$hex17","ownerId":"$account","status":"in-use","privateIpAddress":"10.$n.$n.$n","sourceDestCheck":true,"interfaceType":"interface"}]},"ebsOptimized":true,"enaSupport":true,"cpuOptions":{"coreCount":1,"threadsPerCore":2},"metadataOptions":{"state":"pending","httpTokens":"required","httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}}]}}"#),
    write(Ec2, "TerminateInstances", 0.5, r#"{"instancesSet":{"items":[{"instanceId":"$name"}]}}"#, r#"{"requestId":"$uuid","instancesSet":{"items":[{"instanceId":"$name","currentState":{"code":32,"name":"shutting-down"},"previousState":{"code":16,"name":"running"}}]}}"#),
    write(Ec2, "StopInstances", 0.3, r#"{"instancesSet":{"items":[{"instanceId":"$name"}]},"force":false}"#, r#"{"requestId":"$uuid","instancesSet":{"items":[{"instanceId":"$name","currentState":{"code":64,"name":"stopping"},"previousState":{"code":16,"name":"running"}}]}}"#),
    write(Ec2, "StartInstances", 0.3, r#"{"instancesSet":{"items":[{"instanceId":"$name"}]}}"#, r#"{"requestId":"$uuid","instancesSet":{"items":[{"instanceId":"$name","currentState":{"code":0,"name":"pending"},"previousState":{"code":80,"name":"stopped"}}]}}"#),
    write(Ec2, "AuthorizeSecurityGroupIngress", 0.2, r#"{"groupId":"sg-$hex17","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443,"groups":{},"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}"#, r#"{"requestId":"$uuid","_return":true,"securityGroupRuleSet":{"items":[{"groupOwnerId":"$account","groupId":"sg-$hex17","securityGroupRuleId":"sgr-$hex17","isEgress":false,"ipProtocol":"tcp","fromPort":443,"toPort":443,"cidrIpv4":"10.0.0.0/8"}]}}"#),
    write(Ec2, "CreateSnapshot", 0.4, r#"{"volumeId":"vol-$hex17","description":"Created by AWS Backup"}"#, r#"{"requestId":"$uuid","snapshotId":"snap-$hex17","volumeId":"vol-$hex17","status":"pending","startTime":$epochms,"progress":"","ownerId":"$account","volumeSize":100,"encrypted":true}"#),
    // S3 bucket-level management calls.
    read(S3, "ListBuckets", 5.0, r#"{"Host":"s3.$region.amazonaws.com"}"#),
    read(S3, "GetBucketLocation", 9.0, r#"{"location":"","bucketName":"$name","Host":"$name.s3.$region.amazonaws.com"}"#).listing_resources(),
    read(S3, "GetBucketAcl", 5.0, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","acl":""}"#).listing_resources(),
    read(S3, "GetBucketPolicy", 2.5, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","policy":""}"#).listing_resources(),
    read(S3, "GetBucketVersioning", 2.5, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","versioning":""}"#).listing_resources(),
    read(S3, "GetBucketEncryption", 2.5, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","encryption":""}"#).listing_resources(),
    read(S3, "GetBucketTagging", 2.5, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","tagging":""}"#).listing_resources(),
    read(S3, "GetBucketPublicAccessBlock", 1.5, r#"{"publicAccessBlock":"","bucketName":"$name","Host":"$name.s3.$region.amazonaws.com"}"#).listing_resources(),
    read(S3, "GetBucketOwnershipControls", 1.0, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","ownershipControls":""}"#).listing_resources(),
    write(S3, "PutBucketPolicy", 0.15, r#"{"bucketPolicy":{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::$name","arn:aws:s3:::$name/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]},"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","policy":""}"#, NULL)
        .listing_resources(),
    write(S3, "PutBucketTagging", 0.2, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","Tagging":{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","TagSet":{"Tag":[{"Value":"$word","Key":"team"},{"Value":"prod","Key":"env"}]}},"tagging":""}"#, NULL)
        .listing_resources(),
    write(S3, "CreateBucket", 0.08, r#"{"CreateBucketConfiguration":{"LocationConstraint":"$region","xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com"}"#, NULL)
        .listing_resources(),
    write(S3, "PutBucketPublicAccessBlock", 0.08, r#"{"publicAccessBlock":"","bucketName":"$name","PublicAccessBlockConfiguration":{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","RestrictPublicBuckets":true,"BlockPublicPolicy":true,"BlockPublicAcls":true,"IgnorePublicAcls":true},"Host":"$name.s3.$region.amazonaws.com"}"#, NULL)
        .listing_resources(),
    write(S3, "DeleteBucket", 0.03, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com"}"#, NULL)
        .listing_resources(),
    // S3 and Lambda data events: a small share, as in a trail with few data selectors.
    read(S3, "GetObject", 18.0, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","key":"$objectkey"}"#).data_event(),
    write(S3, "PutObject", 14.0, r#"{"bucketName":"$name","Host":"$name.s3.$region.amazonaws.com","key":"$objectkey","x-amz-server-side-encryption":"aws:kms"}"#, r#"{"x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:$region:$account:key/$uuid","x-amz-server-side-encryption":"aws:kms","x-amz-version-id":"$hex32"}"#)
        .data_event(),
    read(S3, "ListObjects", 3.0, r#"{"list-type":"2","bucketName":"$name","encoding-type":"url","max-keys":"1000","prefix":"$word/","delimiter":"/","Host":"$name.s3.$region.amazonaws.com"}"#).data_event(),
    write(Lambda, "Invoke", 10.0, r#"{"functionName":"$arn","invocationType":"RequestResponse","logType":"None"}"#, NULL).data_event(),
    // IAM: mostly reads from policy tooling and consoles.
    read(Iam, "GetRole", 6.0, r#"{"roleName":"$name"}"#).listing_resources(),
    read(Iam, "ListRoles", 2.5, r#"{"maxItems":1000}"#),
    read(Iam, "GetUser", 2.5, r#"{"userName":"$user"}"#),
    read(Iam, "ListUsers", 1.5, r#"{"maxItems":1000}"#),
    read(Iam, "ListAttachedRolePolicies", 4.0, r#"{"roleName":"$name"}"#),
    read(Iam, "ListRolePolicies", 3.0, r#"{"roleName":"$name"}"#),
    read(Iam, "GetRolePolicy", 2.0, r#"{"roleName":"$name","policyName":"$word-inline"}"#),
    read(Iam, "GetPolicy", 2.5, r#"{"policyArn":"arn:aws:iam::$account:policy/$word-access"}"#),
    read(Iam, "GetPolicyVersion", 2.5, r#"{"policyArn":"arn:aws:iam::$account:policy/$word-access","versionId":"v$n"}"#),
    read(Iam, "ListAccessKeys", 1.5, r#"{"userName":"$user"}"#),
    read(Iam, "ListInstanceProfilesForRole", 1.0, r#"{"roleName":"$name"}"#),
    read(Iam, "GetAccountAuthorizationDetails", 0.05, r#"{"filter":["User","Role","Group","LocalManagedPolicy"]}"#),
    write(Iam, "AttachRolePolicy", 0.25, r#"{"roleName":"$name","policyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}"#, NULL),
    write(Iam, "DetachRolePolicy", 0.15, r#"{"roleName":"$name","policyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}"#, NULL),
    write(Iam, "PutRolePolicy", 0.15, r#"{"roleName":"$name","policyName":"$word-inline","policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"s3:PutObject\"],\"Resource\":\"arn:aws:s3:::$word-$account/*\"}]}"}"#, NULL),
    write(Iam, "CreateRole", 0.15, r#"{"roleName":"$name","assumeRolePolicyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}","maxSessionDuration":3600}"#, r#"{"role":{"path":"/","roleName":"$name","roleId":"AROA$hex17","arn":"$arn","createDate":"$displaytime","assumeRolePolicyDocument":"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D","maxSessionDuration":3600}}"#),
    write(Iam, "CreateAccessKey", 0.06, r#"{"userName":"$user"}"#, r#"{"accessKey":{"userName":"$user","accessKeyId":"AKIA$hex16","status":"Active","createDate":"$displaytime"}}"#),
    write(Iam, "DeleteAccessKey", 0.05, r#"{"userName":"$user","accessKeyId":"AKIA$hex16"}"#, NULL),
    write(Iam, "UpdateAssumeRolePolicy", 0.05, r#"{"roleName":"$name","policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::$account:root\"},\"Action\":\"sts:AssumeRole\"}]}"}"#, NULL),
    write(Iam, "TagRole", 0.1, r#"{"roleName":"$name","tags":[{"key":"team","value":"$word"}]}"#, NULL),
    // Lambda management.
    read(Lambda, "ListFunctions20150331", 3.0, r#"{"functionVersion":"ALL","maxItems":50}"#),
    read(Lambda, "GetFunction20150331v2", 3.5, r#"{"functionName":"$name"}"#),
    read(Lambda, "GetFunctionConfiguration20150331v2", 2.5, r#"{"functionName":"$arn"}"#),
    read(Lambda, "ListVersionsByFunction20150331", 0.8, r#"{"functionName":"$name","maxItems":50}"#),
    read(Lambda, "ListEventSourceMappings20150331", 0.8, r#"{"functionName":"$arn"}"#),
    write(Lambda, "UpdateFunctionCode20150331v2", 0.4, r#"{"functionName":"$name","s3Bucket":"$word-artifacts-$account","s3Key":"$name/$hex32.zip","publish":true,"dryRun":false}"#, r#"{"functionName":"$name","functionArn":"$arn","runtime":"python3.12","role":"arn:aws:iam::$account:role/$name-exec","handler":"app.handler","codeSize":$bytes,"description":"","timeout":30,"memorySize":512,"lastModified":"$time","codeSha256":"$hex32","version":"$n","tracingConfig":{"mode":"PassThrough"},"revisionId":"$uuid","state":"Active","lastUpdateStatus":"InProgress","lastUpdateStatusReason":"The function is being created.","lastUpdateStatusReasonCode":"Creating","packageType":"Zip","architectures":["arm64"],"ephemeralStorage":{"size":512}}"#),
    write(Lambda, "UpdateFunctionConfiguration20150331v2", 0.2, r#"{"functionName":"$name","environment":{},"timeout":60}"#, r#"{"functionName":"$name","functionArn":"$arn","runtime":"python3.12","role":"arn:aws:iam::$account:role/$name-exec","handler":"app.handler","timeout":60,"memorySize":512,"lastModified":"$time","revisionId":"$uuid","state":"Active","lastUpdateStatus":"InProgress","packageType":"Zip"}"#),
    write(Lambda, "AddPermission20150331v2", 0.08, r#"{"functionName":"$name","statementId":"$uuid","action":"lambda:InvokeFunction","principal":"events.amazonaws.com","sourceArn":"arn:aws:events:$region:$account:rule/$word-schedule"}"#, r#"{"statement":"{\"Sid\":\"$uuid\",\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"events.amazonaws.com\"},\"Action\":\"lambda:InvokeFunction\",\"Resource\":\"$arn\"}"}"#),
    // DynamoDB management (item-level calls are data events that trails rarely select).
    read(DynamoDb, "DescribeTable", 9.0, r#"{"tableName":"$name"}"#),
    read(DynamoDb, "ListTables", 2.0, r#"{"limit":100}"#),
    read(DynamoDb, "DescribeTimeToLive", 1.5, r#"{"tableName":"$name"}"#),
    read(DynamoDb, "DescribeContinuousBackups", 1.0, r#"{"tableName":"$name"}"#),
    write(DynamoDb, "CreateBackup", 0.3, r#"{"tableName":"$name","backupName":"$name-$date"}"#, r#"{"backupDetails":{"backupArn":"$arn/backup/01$hex16","backupName":"$name-$date","backupSizeBytes":$bytes,"backupStatus":"CREATING","backupType":"USER","backupCreationDateTime":"$displaytime"}}"#),
    write(DynamoDb, "UpdateTable", 0.1, r#"{"tableName":"$name","billingMode":"PAY_PER_REQUEST"}"#, r#"{"tableDescription":{"tableName":"$name","tableStatus":"UPDATING","tableArn":"$arn","tableId":"$uuid","billingModeSummary":{"billingMode":"PAY_PER_REQUEST"}}}"#),
    // Systems Manager: parameters read at startup, agents checking in.
    read(Ssm, "GetParameter", 11.0, r#"{"name":"$name","withDecryption":true}"#),
    read(Ssm, "GetParameters", 5.0, r#"{"names":["$name","/$word/prod/$word-url"],"withDecryption":true}"#),
    read(Ssm, "GetParametersByPath", 5.0, r#"{"path":"/$word/prod/","recursive":true,"withDecryption":true}"#),
    read(Ssm, "DescribeInstanceInformation", 4.0, r#"{"filters":[{"key":"InstanceIds","values":["i-$hex17"]}]}"#),
    read(Ssm, "DescribeParameters", 1.5, r#"{"parameterFilters":[{"key":"Name","option":"BeginsWith","values":["/$word/"]}],"maxResults":50}"#),
    write(Ssm, "UpdateInstanceInformation", 45.0, r#"{"instanceId":"i-$hex17","agentVersion":"3.3.1142.0","agentStatus":"Active","platformType":"Linux","platformName":"Amazon Linux","platformVersion":"2023","iPAddress":"10.$n.$n.$n","computerName":"ip-10-$n-$n-$n.$region.compute.internal","agentName":"amazon-ssm-agent","availabilityZone":"$regiona","availabilityZoneId":"use1-az$n"}"#, NULL),
    write(Ssm, "UpdateInstanceAssociationStatus", 12.0, r#"{"associationId":"$uuid","instanceId":"i-$hex17","executionResult":{"status":"Success","errorCode":"","executionDate":"$displaytime","executionSummary":"1 out of 1 plugin processed, 1 success, 0 failed, 0 timedout, 0 skipped. ","outputUrl":""}}"#, NULL),
    write(Ssm, "PutParameter", 0.3, r#"{"name":"$name","type":"SecureString","keyId":"alias/aws/ssm","overwrite":true,"tier":"Standard"}"#, r#"{"version":$n,"tier":"Standard"}"#),
    write(Ssm, "StartSession", 0.15, r#"{"target":"i-$hex17"}"#, r#"{"sessionId":"$user-$hex17","tokenValue":"Value hidden due to security reasons.","streamUrl":"wss://ssmmessages.$region.amazonaws.com/v1/data-channel/$user-$hex17?role=publish_subscribe&cell-number=$token"}"#),
    // Secrets Manager.
    read(SecretsManager, "GetSecretValue", 9.0, r#"{"secretId":"$arn"}"#),
    read(SecretsManager, "DescribeSecret", 2.5, r#"{"secretId":"$name"}"#),
    read(SecretsManager, "ListSecrets", 1.0, r#"{"maxResults":100,"filters":[{"key":"tag-key","values":["team"]}]}"#),
    write(SecretsManager, "PutSecretValue", 0.25, r#"{"secretId":"$arn","clientRequestToken":"$uuid","versionStages":["AWSPENDING"]}"#, r#"{"arn":"$arn","name":"$name","versionId":"$uuid","versionStages":["AWSPENDING"]}"#),
    write(SecretsManager, "RotateSecret", 0.1, r#"{"secretId":"$arn","clientRequestToken":"$uuid","rotateImmediately":true}"#, NULL),
    write(SecretsManager, "CreateSecret", 0.05, r#"{"name":"$name","clientRequestToken":"$uuid","kmsKeyId":"alias/$word","description":"database credentials for $word"}"#, r#"{"aRN":"$arn","name":"$name","versionId":"$uuid"}"#),
    // CloudTrail itself: the calls a security team watches most closely.
    read(CloudTrail, "DescribeTrails", 1.5, r#"{"trailNameList":[],"includeShadowTrails":true}"#),
    read(CloudTrail, "GetTrailStatus", 1.5, r#"{"name":"$arn"}"#),
    read(CloudTrail, "LookupEvents", 1.0, r#"{"lookupAttributes":[{"attributeKey":"EventName","attributeValue":"ConsoleLogin"}],"startTime":"$displaytime","maxResults":50}"#),
    read(CloudTrail, "GetEventSelectors", 0.8, r#"{"trailName":"$arn"}"#),
    read(CloudTrail, "ListTrails", 0.4, NULL),
    write(CloudTrail, "StopLogging", 0.01, r#"{"name":"$arn"}"#, NULL),
    write(CloudTrail, "StartLogging", 0.02, r#"{"name":"$arn"}"#, NULL),
    write(CloudTrail, "UpdateTrail", 0.02, r#"{"name":"$name","isMultiRegionTrail":true,"enableLogFileValidation":true}"#, r#"{"name":"$name","s3BucketName":"$word-cloudtrail-$account","includeGlobalServiceEvents":true,"isMultiRegionTrail":true,"trailARN":"$arn","logFileValidationEnabled":true,"isOrganizationTrail":false}"#),
    write(CloudTrail, "DeleteTrail", 0.005, r#"{"name":"$arn"}"#, NULL),
    // CloudWatch Logs.
    write(Logs, "CreateLogStream", 60.0, r#"{"logGroupName":"$name","logStreamName":"$date/[$LATEST]$hex32"}"#, NULL),
    read(Logs, "DescribeLogGroups", 5.0, r#"{"logGroupNamePrefix":"/aws/$word","limit":50}"#),
    read(Logs, "DescribeLogStreams", 5.0, r#"{"logGroupName":"$name","orderBy":"LastEventTime","descending":true,"limit":1}"#),
    read(Logs, "FilterLogEvents", 1.5, r#"{"logGroupName":"$name","startTime":$epochms,"filterPattern":"ERROR","interleaved":true}"#),
    read(Logs, "GetQueryResults", 1.5, r#"{"queryId":"$uuid"}"#),
    write(Logs, "CreateLogGroup", 1.0, r#"{"logGroupName":"$name"}"#, NULL),
    write(Logs, "PutRetentionPolicy", 0.15, r#"{"logGroupName":"$name","retentionInDays":90}"#, NULL),
    write(Logs, "DeleteLogGroup", 0.05, r#"{"logGroupName":"$name"}"#, NULL),
    // RDS.
    read(Rds, "DescribeDBInstances", 5.0, r#"{"dBInstanceIdentifier":"$name"}"#),
    read(Rds, "DescribeDBClusters", 2.5, r#"{"includeShared":false}"#),
    read(Rds, "DescribeDBSnapshots", 0.8, r#"{"dBInstanceIdentifier":"$name","snapshotType":"automated","includeShared":false,"includePublic":false}"#),
    read(Rds, "DescribeEvents", 0.8, r#"{"sourceIdentifier":"$name","sourceType":"db-instance","duration":60}"#),
    write(Rds, "CreateDBSnapshot", 0.15, r#"{"dBSnapshotIdentifier":"$name-$date","dBInstanceIdentifier":"$name"}"#, r#"{"dBSnapshotIdentifier":"$name-$date","dBInstanceIdentifier":"$name","engine":"postgres","allocatedStorage":200,"status":"creating","port":5432,"availabilityZone":"$regiona","vpcId":"vpc-$hex17","instanceCreateTime":"$displaytime","masterUsername":"postgres","engineVersion":"16.4","licenseModel":"postgresql-license","snapshotType":"manual","encrypted":true,"kmsKeyId":"arn:aws:kms:$region:$account:key/$uuid","dBSnapshotArn":"arn:aws:rds:$region:$account:snapshot:$name-$date","storageType":"gp3"}"#),
    write(Rds, "ModifyDBInstance", 0.05, r#"{"dBInstanceIdentifier":"$name","backupRetentionPeriod":14,"applyImmediately":true}"#, NULL),
    // ECR: image pulls by nodes and CI.
    read(Ecr, "GetAuthorizationToken", 9.0, r#"{"registryIds":["$account"]}"#),
    read(Ecr, "BatchGetImage", 5.0, r#"{"repositoryName":"$name","imageIds":[{"imageTag":"v1.$n.$n"}],"acceptedMediaTypes":["application/vnd.docker.distribution.manifest.v1+json","application/vnd.docker.distribution.manifest.v2+json","application/vnd.oci.image.manifest.v1+json"]}"#)
        .listing_resources(),
    read(Ecr, "GetDownloadUrlForLayer", 7.0, r#"{"repositoryName":"$name","layerDigest":"sha256:$hex32$hex32"}"#).listing_resources(),
    read(Ecr, "BatchCheckLayerAvailability", 2.0, r#"{"repositoryName":"$name","layerDigests":["sha256:$hex32$hex32"]}"#).listing_resources(),
    read(Ecr, "DescribeRepositories", 1.5, r#"{"repositoryNames":["$name"]}"#),
    read(Ecr, "DescribeImages", 1.5, r#"{"repositoryName":"$name","imageIds":[{"imageTag":"latest"}]}"#),
    write(Ecr, "PutImage", 0.4, r#"{"repositoryName":"$name","imageTag":"v1.$n.$n","imageManifestMediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#, r#"{"image":{"registryId":"$account","repositoryName":"$name","imageId":{"imageDigest":"sha256:$hex32$hex32","imageTag":"v1.$n.$n"}}}"#)
        .listing_resources(),
    write(Ecr, "InitiateLayerUpload", 0.3, r#"{"repositoryName":"$name"}"#, r#"{"uploadId":"$uuid","partSize":20971520}"#),
    // SNS and SQS management.
    read(Sns, "GetTopicAttributes", 2.5, r#"{"topicArn":"$arn"}"#),
    read(Sns, "ListTopics", 1.5, NULL),
    read(Sns, "ListSubscriptionsByTopic", 0.8, r#"{"topicArn":"$arn"}"#),
    write(Sns, "Subscribe", 0.15, r#"{"topicArn":"$arn","protocol":"sqs","endpoint":"arn:aws:sqs:$region:$account:$word-events","returnSubscriptionArn":true}"#, r#"{"subscriptionArn":"$arn:$uuid"}"#),
    write(Sns, "CreateTopic", 0.05, r#"{"name":"$name","attributes":{"KmsMasterKeyId":"alias/aws/sns"}}"#, r#"{"topicArn":"$arn"}"#),
    read(Sqs, "GetQueueAttributes", 5.0, r#"{"queueUrl":"https://sqs.$region.amazonaws.com/$account/$name","attributeNames":["All"]}"#),
    read(Sqs, "GetQueueUrl", 3.0, r#"{"queueName":"$name"}"#),
    read(Sqs, "ListQueues", 1.5, r#"{"queueNamePrefix":"$word"}"#),
    write(Sqs, "SetQueueAttributes", 0.15, r#"{"queueUrl":"https://sqs.$region.amazonaws.com/$account/$name","attributes":{"VisibilityTimeout":"300"}}"#, NULL),
    write(Sqs, "CreateQueue", 0.05, r#"{"queueName":"$name","attributes":{"KmsMasterKeyId":"alias/aws/sqs"}}"#, r#"{"queueUrl":"https://sqs.$region.amazonaws.com/$account/$name"}"#),
    write(Sqs, "PurgeQueue", 0.02, r#"{"queueUrl":"https://sqs.$region.amazonaws.com/$account/$name"}"#, NULL),
];

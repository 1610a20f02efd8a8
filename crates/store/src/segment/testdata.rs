//! Realistic-looking CloudTrail management events for segment tests and layout
//! measurements: a mix of services and actions, Zipf-like users and resources, about 2%
//! errors and 70% read-only calls, 1–2 KB each, with random request and event IDs (the
//! part no compressor can shrink). Deterministic for a given seed.

use bytes::Bytes;
use trailkeeper_core::{RecordDefaults, parse_record};

use crate::StoredEvent;

pub(super) const ACCOUNT: &str = "123456789012";
pub(super) const REGION: &str = "us-east-1";
/// 2026-03-14T00:00:00Z.
pub(super) const DAY_START_MS: i64 = 1_773_446_400_000;

/// (eventSource, eventName, readOnly, resource type).
const ACTIONS: &[(&str, &str, bool, Option<&str>)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true, None),
    ("sts.amazonaws.com", "AssumeRole", false, Some("AWS::IAM::Role")),
    ("s3.amazonaws.com", "ListBuckets", true, None),
    ("kms.amazonaws.com", "Decrypt", true, Some("AWS::KMS::Key")),
    ("s3.amazonaws.com", "GetBucketAcl", true, Some("AWS::S3::Bucket")),
    ("iam.amazonaws.com", "GetRole", true, Some("AWS::IAM::Role")),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", true, None),
    ("logs.amazonaws.com", "CreateLogStream", false, None),
    ("lambda.amazonaws.com", "ListFunctions20150331", true, None),
    ("kms.amazonaws.com", "GenerateDataKey", true, Some("AWS::KMS::Key")),
    ("ec2.amazonaws.com", "RunInstances", false, Some("AWS::EC2::Instance")),
    ("dynamodb.amazonaws.com", "DescribeTable", true, Some("AWS::DynamoDB::Table")),
    ("s3.amazonaws.com", "PutBucketPolicy", false, Some("AWS::S3::Bucket")),
    ("iam.amazonaws.com", "CreateAccessKey", false, Some("AWS::IAM::User")),
    ("cloudtrail.amazonaws.com", "LookupEvents", true, None),
    ("ec2.amazonaws.com", "TerminateInstances", false, Some("AWS::EC2::Instance")),
];

const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.167.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.210-201.852.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/sts#1.28.4",
    "console.amazonaws.com",
    "aws-internal/3 aws-sdk-java/1.12.680 Linux/5.10.210-178.855.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 vendor/Oracle_Corporation cfg/retry-mode/standard",
    "terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0",
];

pub(super) struct Generator {
    state: u64,
    next_seq: u64,
    time_ms: i64,
}

impl Generator {
    pub(super) fn new(seed: u64) -> Generator {
        Generator { state: seed ^ 0x9e37_79b9_7f4a_7c15, next_seq: 1, time_ms: DAY_START_MS }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Zipf-like (s ≈ 1): index k of n drawn with probability falling as 1/k.
    fn zipf(&mut self, n: u64) -> u64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64 + 1.0).powf(unit) - 1.0) as u64 % n.max(1)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..len).map(|_| ALPHABET[self.below(64) as usize] as char).collect()
    }

    /// The next event's JSON; times mostly rise, with some arriving a few seconds late.
    pub(super) fn next_json(&mut self) -> String {
        self.time_ms += self.below(9) as i64;
        let late = if self.below(10) == 0 { self.below(5_000) as i64 } else { 0 };
        let time_ms = (self.time_ms - late).max(DAY_START_MS);
        let (source, name, read_only, resource_type) = ACTIONS[self.zipf(ACTIONS.len() as u64) as usize];
        let user = self.zipf(300);
        let role = format!("{}-role-{}", ["app", "ci", "ops", "data"][(user % 4) as usize], user % 37);
        let session = format!("{}-session-{}", role, (time_ms / 3_600_000 + user as i64) % 1000);
        let key_seed = user.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ (time_ms / 3_600_000) as u64;
        let access_key = format!("ASIA{key_seed:016X}");
        let ip = format!("10.{}.{}.{}", user % 250, (user * 7) % 250, 10 + user % 200);
        let agent = USER_AGENTS[(user % USER_AGENTS.len() as u64) as usize];
        let resource = self.zipf(500);
        let arn = match resource_type {
            Some("AWS::IAM::Role") => format!("arn:aws:iam::{ACCOUNT}:role/service-role-{resource}"),
            Some("AWS::KMS::Key") => {
                format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{:08x}-1f2e-4d3c-9b8a-{:012x}", resource, resource * 7919)
            }
            Some("AWS::S3::Bucket") => format!("arn:aws:s3:::company-data-bucket-{resource}"),
            Some("AWS::EC2::Instance") => {
                format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0{:016x}", resource * 104_729)
            }
            Some("AWS::DynamoDB::Table") => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders-{resource}"),
            _ => format!("arn:aws:iam::{ACCOUNT}:user/deploy-{resource}"),
        };
        let request = match name {
            "DescribeInstances" => format!(
                r#"{{"instancesSet":{{}},"filterSet":{{"items":[{{"name":"tag:Team","valueSet":{{"items":[{{"value":"team-{}"}}]}}}}]}},"maxResults":{}}}"#,
                resource % 20,
                [50, 100, 1000][(resource % 3) as usize]
            ),
            "AssumeRole" => format!(r#"{{"roleArn":"{arn}","roleSessionName":"{session}","durationSeconds":3600}}"#),
            "Decrypt" | "GenerateDataKey" => format!(
                r#"{{"keyId":"{arn}","encryptionAlgorithm":"SYMMETRIC_DEFAULT","encryptionContext":{{"aws:lambda:FunctionArn":"arn:aws:lambda:{REGION}:{ACCOUNT}:function:handler-{}"}}}}"#,
                resource % 40
            ),
            "GetBucketAcl" | "PutBucketPolicy" => {
                format!(
                    r#"{{"bucketName":"company-data-bucket-{resource}","Host":"company-data-bucket-{resource}.s3.{REGION}.amazonaws.com","acl":""}}"#
                )
            }
            "GetRole" => format!(r#"{{"roleName":"service-role-{resource}"}}"#),
            "RunInstances" | "TerminateInstances" => {
                format!(
                    r#"{{"instancesSet":{{"items":[{{"instanceId":"i-0{:016x}"}}]}},"instanceType":"m6i.large"}}"#,
                    resource * 104_729
                )
            }
            "DescribeTable" => format!(r#"{{"tableName":"orders-{resource}"}}"#),
            "CreateLogStream" => format!(
                r#"{{"logGroupName":"/aws/lambda/handler-{}","logStreamName":"2026/03/14/[$LATEST]{}"}}"#,
                resource % 40,
                self.token(32)
            ),
            "CreateAccessKey" => format!(r#"{{"userName":"deploy-{resource}"}}"#),
            _ => "null".to_owned(),
        };
        let response = match name {
            "AssumeRole" => format!(
                r#"{{"credentials":{{"accessKeyId":"ASIA{}","sessionToken":"{}","expiration":"Mar 14, 2026, 11:00:00 PM"}},"assumedRoleUser":{{"assumedRoleId":"AROA{}:{session}","arn":"arn:aws:sts::{ACCOUNT}:assumed-role/service-role-{resource}/{session}"}}}}"#,
                self.token(16).to_uppercase(),
                self.token(320),
                self.token(17).to_uppercase()
            ),
            "RunInstances" => format!(
                r#"{{"requestId":"{}","reservationId":"r-0{:016x}","ownerId":"{ACCOUNT}","instancesSet":{{"items":[{{"instanceId":"i-0{:016x}","imageId":"ami-0abcdef1234567890","instanceState":{{"code":0,"name":"pending"}}}}]}}}}"#,
                self.uuid(),
                self.next_u64() >> 1,
                resource * 104_729
            ),
            _ => "null".to_owned(),
        };
        let error = if self.below(50) == 0 {
            format!(
                r#","errorCode":"AccessDenied","errorMessage":"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session} is not authorized to perform: {}:{name} on resource: {arn} because no identity-based policy allows the {}:{name} action""#,
                source.split('.').next().unwrap_or_default(),
                source.split('.').next().unwrap_or_default()
            )
        } else {
            String::new()
        };
        let resources = match resource_type {
            Some(kind) => format!(r#","resources":[{{"accountId":"{ACCOUNT}","type":"{kind}","ARN":"{arn}"}}]"#),
            None => String::new(),
        };
        let seconds = (time_ms - DAY_START_MS) / 1000;
        format!(
            concat!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROA{pid:016X}:{session}","#,
                r#""arn":"arn:aws:sts::{account}:assumed-role/{role}/{session}","accountId":"{account}","accessKeyId":"{key}","#,
                r#""sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{pid:016X}","arn":"arn:aws:iam::{account}:role/{role}","#,
                r#""accountId":"{account}","userName":"{role}"}},"attributes":{{"creationDate":"2026-03-14T{hh:02}:00:00Z","mfaAuthenticated":"false"}}}}}},"#,
                r#""eventTime":"2026-03-14T{hh:02}:{mm:02}:{ss:02}Z","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","#,
                r#""sourceIPAddress":"{ip}","userAgent":"{agent}"{error},"requestParameters":{request},"responseElements":{response},"#,
                r#""requestID":"{request_id}","eventID":"{event_id}","readOnly":{read_only}{resources},"eventType":"AwsApiCall","#,
                r#""managementEvent":true,"recipientAccountId":"{account}","eventCategory":"Management","#,
                r#""tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}"}}}}"#
            ),
            pid = user.wrapping_mul(0x9e37_79b9),
            session = session,
            account = ACCOUNT,
            role = role,
            key = access_key,
            hh = seconds / 3600,
            mm = seconds / 60 % 60,
            ss = seconds % 60,
            source = source,
            name = name,
            region = REGION,
            ip = ip,
            agent = agent,
            error = error,
            request = request,
            response = response,
            request_id = self.uuid(),
            event_id = self.uuid(),
            read_only = read_only,
            resources = resources,
            host = source.replace(".amazonaws.com", &format!(".{REGION}.amazonaws.com")),
        )
    }

    /// The next event as the log would store it.
    pub(super) fn next_event(&mut self) -> StoredEvent {
        let json = self.next_json();
        let defaults = RecordDefaults { account_id: ACCOUNT, region: REGION };
        let parsed = parse_record(json.as_bytes(), defaults, &mut String::new)
            .unwrap_or_else(|error| panic!("generated record is invalid: {error}: {json}"));
        let seq = self.next_seq;
        self.next_seq += 1;
        StoredEvent {
            seq,
            event_time_ms: parsed.event_time_ms,
            ingest_time_ms: parsed.event_time_ms + 2_000 + self.below(500) as i64,
            account_id: parsed.account_id,
            region: parsed.region,
            event_id: parsed.event_id,
            category: parsed.category,
            fields: parsed.fields,
            json: Bytes::from(parsed.json),
        }
    }
}

//! A deterministic generator of realistic CloudTrail records.
//!
//! Records follow the shapes real CloudTrail writes (field order, identity shapes, request
//! and response bodies, `tlsDetails`, `resources[]`): a weighted mix of about 140 actions
//! over 15 services (see `catalog`), Zipf-distributed principals and resources, about 2%
//! errors, about 70% read-only calls and a small share of data events, 1–2 KB per record.
//!
//! Everything derives from the seed: the same configuration yields the same bytes. The
//! `sample_*` accessors draw lookup values (a Username, an EventName, ...) from the same
//! distributions the records use, with their own random stream so that sampling never
//! changes the records.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use trailkeeper_core::time::format_event_time;

use crate::catalog::{ACTIONS, Action, Service};
use crate::distribution::Discrete;
use principal::{Client, Principal, PrincipalKind, make_principal};
use resource::{RESOURCE_KINDS, pool_size, resource_arn, resource_name};
use template::{TemplateContext, render};
use text::{
    kebab_case, key, mix, object_key, push_hex, push_quoted, push_token, push_uuid, put_raw, put_str, session_name,
    uuid_from_bits,
};

mod principal;
mod resource;
mod template;
mod text;

/// How to generate. Build it with struct update syntax over [`GeneratorConfig::default`].
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// `recipientAccountId` values, 12 digits each.
    pub accounts: Vec<String>,
    /// `awsRegion` values; the first is the home Region and gets most of the traffic.
    pub regions: Vec<String>,
    /// `eventTime` of the first record, in epoch milliseconds.
    pub start_time_ms: i64,
    /// How fast `eventTime` advances: record `n` happens `n / rate` seconds after the start.
    pub events_per_second_of_event_time: f64,
    /// IAM users and role sessions per account.
    pub principals_per_account: usize,
    /// Exponent of the Zipf laws over principals and resources.
    pub zipf_exponent: f64,
    /// Share of calls that fail.
    pub error_ratio: f64,
}

impl Default for GeneratorConfig {
    fn default() -> GeneratorConfig {
        GeneratorConfig {
            seed: 1,
            accounts: ["111122223333", "444455556666", "777788889999", "123456789012"].map(String::from).to_vec(),
            regions: ["us-east-1", "eu-west-1", "ap-southeast-2"].map(String::from).to_vec(),
            // 2026-11-01T00:00:00Z.
            start_time_ms: 1_793_491_200_000,
            events_per_second_of_event_time: 1_000.0,
            principals_per_account: 800,
            zipf_exponent: 1.1,
            error_ratio: 0.02,
        }
    }
}

/// Why a configuration cannot generate records.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeneratorConfigError {
    #[error("at least one account is needed")]
    NoAccounts,
    #[error("invalid account {0:?}: expected 12 digits")]
    BadAccount(String),
    #[error("at least one region is needed")]
    NoRegions,
    #[error("invalid region {0:?}: expected letters, digits and '-'")]
    BadRegion(String),
    #[error("events_per_second_of_event_time must be positive, got {0}")]
    BadRate(f64),
    #[error("principals_per_account must be at least 1")]
    NoPrincipals,
    #[error("zipf_exponent must be a non-negative number, got {0}")]
    BadExponent(f64),
    #[error("error_ratio must be between 0 and 1, got {0}")]
    BadErrorRatio(f64),
}

/// Share of calls answered from inside AWS (`sourceIPAddress` "AWS Internal").
const AWS_INTERNAL_RATIO: f64 = 0.03;
/// Share of workload calls that go through a VPC endpoint.
const VPC_ENDPOINT_RATIO: f64 = 0.15;

const INVOKING_SERVICES: [&str; 6] = [
    "lambda.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "ec2.amazonaws.com",
    "secretsmanager.amazonaws.com",
    "s3.amazonaws.com",
    "cloudformation.amazonaws.com",
];

/// The random choices that decide one event, shared by the records and the samplers.
#[derive(Debug, Clone, Copy)]
struct Draw {
    action: usize,
    principal: usize,
    region: usize,
    resource_rank: usize,
    via_service: bool,
}

/// Generates CloudTrail records; see the module documentation.
#[derive(Debug)]
pub struct Generator {
    config: GeneratorConfig,
    records: StdRng,
    samples: StdRng,
    sequence: u64,
    actions: Discrete,
    management_actions: Discrete,
    regions: Discrete,
    principals: Vec<Principal>,
    principal_ranks: Discrete,
    /// One Zipf law per resource kind, indexed like `RESOURCE_KINDS`.
    resource_ranks: Vec<Discrete>,
    /// The AWS CLI command of each action (`describe-instances`), for CLI user agents.
    cli_commands: Vec<String>,
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Result<Generator, GeneratorConfigError> {
        validate(&config)?;
        let mut setup = StdRng::seed_from_u64(config.seed);
        let actions = Discrete::from_weights(ACTIONS.iter().map(|action| action.weight))
            .expect("the action table has positive weights");
        let management_actions =
            Discrete::from_weights(ACTIONS.iter().map(|action| if action.data { 0.0 } else { action.weight }))
                .expect("the action table has management actions");
        // The home Region carries about 60% of the traffic; the others share the rest.
        let regions = Discrete::from_weights(
            (0..config.regions.len()).map(|index| if index == 0 { 1.5 * config.regions.len() as f64 } else { 1.0 }),
        )
        .expect("at least one region");
        let mut principals = Vec::with_capacity(config.accounts.len() * config.principals_per_account);
        for account in 0..config.accounts.len() {
            for index in 0..config.principals_per_account {
                principals.push(make_principal(&config, &mut setup, account, index));
            }
        }
        // Zipf rank r is the r-th principal of a shuffled list, so the busiest callers are
        // a random mix of kinds and accounts rather than account 0's first users.
        for index in (1..principals.len()).rev() {
            let other = setup.random_range(0..=index);
            principals.swap(index, other);
        }
        let principal_ranks =
            Discrete::zipf(principals.len(), config.zipf_exponent).ok_or(GeneratorConfigError::NoPrincipals)?;
        let resource_ranks = RESOURCE_KINDS
            .iter()
            .map(|&kind| Discrete::zipf(pool_size(kind), config.zipf_exponent).expect("pools are not empty"))
            .collect();
        let cli_commands = ACTIONS.iter().map(|action| kebab_case(action.name)).collect();
        Ok(Generator {
            records: StdRng::seed_from_u64(config.seed ^ 0x5245_434f_5244_5321),
            samples: StdRng::seed_from_u64(config.seed ^ 0x5341_4d50_4c45_5321),
            config,
            sequence: 0,
            actions,
            management_actions,
            regions,
            principals,
            principal_ranks,
            resource_ranks,
            cli_commands,
        })
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// How many records this generator has written so far; also the sequence number of
    /// the next one.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The `eventID` of record number `sequence` (0-based) under this seed.
    pub fn event_id(&self, sequence: u64) -> String {
        let high = mix(self.config.seed ^ 0x4556_454e_5449_4421, sequence);
        let low = mix(high, sequence ^ 0x9e37_79b9_7f4a_7c15);
        uuid_from_bits(high, low)
    }

    /// The next record as minified JSON.
    pub fn next_record(&mut self) -> Vec<u8> {
        let mut out = String::with_capacity(2048);
        self.write_next_record(&mut out);
        out.into_bytes()
    }

    /// Appends the next record as minified JSON to `out`.
    pub fn write_next_record(&mut self, out: &mut String) {
        let sequence = self.sequence;
        self.sequence += 1;
        let mut rng = std::mem::replace(&mut self.records, StdRng::seed_from_u64(0));
        let draw = self.draw(&mut rng, false);
        self.write_record(out, sequence, draw, &mut rng);
        self.records = rng;
    }

    /// A `Username` as LookupEvents would be asked for it: the caller of a random event
    /// in Event History.
    pub fn sample_username(&mut self) -> String {
        let draw = self.draw_sample(has_caller);
        self.principals[draw.principal].username.clone()
    }

    /// An `AccessKeyId` of the caller of a random event in Event History.
    pub fn sample_access_key_id(&mut self) -> String {
        let draw = self.draw_sample(has_caller);
        self.principals[draw.principal].access_key_id.clone()
    }

    /// The `EventName` of a random event in Event History.
    pub fn sample_event_name(&mut self) -> &'static str {
        ACTIONS[self.draw_sample(|_, _| true).action].name
    }

    /// A `ResourceName` (an ARN from `resources[]`) of a random event in Event History
    /// that lists resources.
    pub fn sample_resource_name(&mut self) -> String {
        let draw = self.draw_sample(|action, _| action.resources);
        let action = &ACTIONS[draw.action];
        let account = &self.config.accounts[self.principals[draw.principal].account];
        let region = self.region_of(action.service, draw.region);
        resource_arn(self.config.seed, action.service.resource_kind(), account, region, draw.resource_rank)
    }

    /// The `eventID` of a uniformly chosen record among the first `records` written
    /// with this seed.
    pub fn sample_event_id(&mut self, records: u64) -> String {
        let sequence = self.samples.random_range(0..records.max(1));
        self.event_id(sequence)
    }

    /// Draws events from the sample stream until one is a management event (Event History
    /// holds no data events) that `accept` takes.
    fn draw_sample(&mut self, accept: impl Fn(&Action, &Draw) -> bool) -> Draw {
        let mut rng = std::mem::replace(&mut self.samples, StdRng::seed_from_u64(0));
        let draw = loop {
            let draw = self.draw(&mut rng, true);
            if accept(&ACTIONS[draw.action], &draw) {
                break draw;
            }
        };
        self.samples = rng;
        draw
    }

    fn draw(&self, rng: &mut StdRng, management_only: bool) -> Draw {
        let action = if management_only { self.management_actions.sample(rng) } else { self.actions.sample(rng) };
        let service = ACTIONS[action].service;
        let kind_index = RESOURCE_KINDS
            .iter()
            .position(|&kind| kind == service.resource_kind())
            .expect("every resource kind has a pool");
        Draw {
            action,
            principal: self.principal_ranks.sample(rng),
            region: self.regions.sample(rng),
            resource_rank: self.resource_ranks[kind_index].sample(rng),
            via_service: rng.random_bool(ACTIONS[action].via_service),
        }
    }

    fn region_of(&self, service: Service, region: usize) -> &str {
        // CloudTrail records calls to IAM, a global service, in us-east-1.
        if service.is_global() { "us-east-1" } else { &self.config.regions[region] }
    }

    fn write_record(&self, out: &mut String, sequence: u64, draw: Draw, rng: &mut StdRng) {
        let action = &ACTIONS[draw.action];
        let service = action.service;
        let principal = &self.principals[draw.principal];
        let account = self.config.accounts[principal.account].as_str();
        let region = self.region_of(service, draw.region);
        let kind = service.resource_kind();
        let time_ms =
            self.config.start_time_ms + (sequence as f64 * 1000.0 / self.config.events_per_second_of_event_time) as i64;
        let event_time = format_event_time(time_ms);
        let resource_name = resource_name(self.config.seed, kind, account, draw.resource_rank);
        let resource_arn = resource_arn(self.config.seed, kind, account, region, draw.resource_rank);
        let invoking_service =
            draw.via_service.then(|| INVOKING_SERVICES[rng.random_range(0..INVOKING_SERVICES.len())]);
        let service_identity = invoking_service.is_some() && is_service_identity(action);
        let aws_internal = invoking_service.is_none() && rng.random_bool(AWS_INTERNAL_RATIO);
        let vpc_endpoint =
            principal.workload && !aws_internal && invoking_service.is_none() && rng.random_bool(VPC_ENDPOINT_RATIO);
        let failed = rng.random_bool(self.config.error_ratio);
        let context = TemplateContext {
            name: &resource_name,
            arn: &resource_arn,
            region,
            account,
            user: &principal.username,
            session: session_name(rng),
            object_key: object_key(rng),
            time_ms,
            event_time: &event_time,
        };

        out.push('{');
        put_str(out, "eventVersion", service.event_version());
        key(out, "userIdentity");
        if service_identity {
            out.push_str(r#"{"type":"AWSService","invokedBy":""#);
            out.push_str(invoking_service.unwrap_or_default());
            out.push_str(r#""}"#);
        } else {
            self.write_identity(out, principal, time_ms, invoking_service, rng);
        }
        put_str(out, "eventTime", &event_time);
        put_str(out, "eventSource", service.event_source());
        put_str(out, "eventName", action.name);
        put_str(out, "awsRegion", region);
        let source_ip = match invoking_service {
            Some(host) => host.to_owned(),
            None if aws_internal => "AWS Internal".to_owned(),
            None if vpc_endpoint => {
                format!("10.{}.{}.{}", rng.random_range(0..32), rng.random::<u8>(), rng.random_range(1..255))
            }
            None => principal.source_ip.clone(),
        };
        put_str(out, "sourceIPAddress", &source_ip);
        key(out, "userAgent");
        match invoking_service {
            Some(host) => push_quoted(out, host),
            None if aws_internal => push_quoted(out, "AWS Internal"),
            None => self.write_user_agent(out, principal.client, draw.action, rng),
        }
        if failed {
            self.write_error(out, action, principal, &context, rng);
        }
        key(out, "requestParameters");
        render(out, action.request, &context, rng);
        key(out, "responseElements");
        render(out, if failed { "null" } else { action.response }, &context, rng);
        match service {
            Service::S3 => {
                key(out, "additionalEventData");
                out.push_str(r#"{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":""#);
                push_token(out, rng, 76);
                let _ = write!(out, r#"","bytesTransferredOut":{}}}"#, rng.random_range(0..4_000_000));
            }
            Service::Lambda if action.data => {
                key(out, "additionalEventData");
                let _ = write!(out, r#"{{"functionVersion":"{resource_arn}:$LATEST"}}"#);
            }
            _ => {}
        }
        key(out, "requestID");
        out.push('"');
        if service == Service::S3 {
            push_hex(out, rng, 16, true);
        } else {
            push_uuid(out, rng);
        }
        out.push('"');
        put_str(out, "eventID", &self.event_id(sequence));
        put_raw(out, "readOnly", if action.read_only { "true" } else { "false" });
        if action.resources {
            write_resources(out, action, &context);
        }
        put_str(out, "eventType", "AwsApiCall");
        put_raw(out, "managementEvent", if action.data { "false" } else { "true" });
        put_str(out, "recipientAccountId", account);
        if vpc_endpoint {
            key(out, "vpcEndpointId");
            out.push_str("\"vpce-");
            push_hex(out, rng, 17, false);
            out.push('"');
            put_str(out, "vpcEndpointAccountId", account);
        }
        put_str(out, "eventCategory", if action.data { "Data" } else { "Management" });
        if principal.client == Client::Console && invoking_service.is_none() {
            put_str(out, "sessionCredentialFromConsole", "true");
        }
        if !aws_internal && invoking_service.is_none() {
            key(out, "tlsDetails");
            let modern = !matches!(principal.client, Client::JavaSdk | Client::SsmAgent);
            out.push_str(if modern {
                r#"{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":""#
            } else {
                r#"{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","clientProvidedHostHeader":""#
            });
            match service {
                Service::Iam => out.push_str("iam.amazonaws.com"),
                Service::S3 => {
                    let _ = write!(out, "{resource_name}.s3.{region}.amazonaws.com");
                }
                _ => {
                    let _ = write!(out, "{}.{region}.amazonaws.com", service.prefix());
                }
            }
            out.push_str("\"}");
        }
        out.push('}');
    }

    fn write_identity(
        &self,
        out: &mut String,
        principal: &Principal,
        time_ms: i64,
        invoked_by: Option<&str>,
        rng: &mut StdRng,
    ) {
        let account = self.config.accounts[principal.account].as_str();
        let type_name = match principal.kind {
            PrincipalKind::IamUser => "IAMUser",
            PrincipalKind::AssumedRole { .. } => "AssumedRole",
            PrincipalKind::Root => "Root",
        };
        out.push('{');
        put_str(out, "type", type_name);
        put_str(out, "principalId", &principal.principal_id);
        put_str(out, "arn", &principal.arn);
        put_str(out, "accountId", account);
        put_str(out, "accessKeyId", &principal.access_key_id);
        match &principal.kind {
            PrincipalKind::IamUser => {
                put_str(out, "userName", &principal.username);
                if principal.client == Client::Console {
                    write_session_attributes(out, time_ms, principal.mfa_authenticated, rng, None);
                }
            }
            PrincipalKind::AssumedRole { role_name, role_id, ec2_instance } => {
                let issuer = format!(
                    r#"{{"type":"Role","principalId":"{role_id}","arn":"arn:aws:iam::{account}:role/{role_name}","accountId":"{account}","userName":"{role_name}"}}"#
                );
                write_session_attributes(
                    out,
                    time_ms,
                    principal.mfa_authenticated,
                    rng,
                    Some((&issuer, *ec2_instance)),
                );
            }
            PrincipalKind::Root => {
                if principal.client == Client::Console {
                    write_session_attributes(out, time_ms, principal.mfa_authenticated, rng, None);
                }
            }
        }
        if let Some(host) = invoked_by {
            put_str(out, "invokedBy", host);
        }
        out.push('}');
    }

    fn write_user_agent(&self, out: &mut String, client: Client, action: usize, rng: &mut StdRng) {
        let service = ACTIONS[action].service.prefix();
        out.push('"');
        match client {
            Client::Console => out.push_str(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            ),
            Client::Cli => {
                let _ = write!(
                    out,
                    "aws-cli/2.22.{} md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-1021-aws md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off md/command#{service}.{}",
                    rng.random_range(0..30),
                    self.cli_commands[action]
                );
            }
            Client::Boto3Lambda => out.push_str(
                "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#5.10.227-239.884.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.35.36",
            ),
            Client::GoSdk => {
                let _ = write!(
                    out,
                    "aws-sdk-go-v2/1.32.2 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64 api/{service}#1.{}.0 m/E,g",
                    rng.random_range(20..190)
                );
            }
            Client::JavaSdk => out.push_str(
                "aws-sdk-java/2.29.6 Linux/5.10.226-214.880.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.5+11-LTS Java/21.0.5 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/adaptive",
            ),
            Client::Terraform => {
                let _ = write!(
                    out,
                    "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.76.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.4 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64 api/{service}#1.{}.1",
                    rng.random_range(20..190)
                );
            }
            Client::SsmAgent => out.push_str("aws-sdk-go/1.55.5 (go1.22.8; linux; amd64) amazon-ssm-agent/3.3.1142.0"),
        }
        out.push('"');
    }

    fn write_error(
        &self,
        out: &mut String,
        action: &Action,
        principal: &Principal,
        context: &TemplateContext<'_>,
        rng: &mut StdRng,
    ) {
        let service = action.service;
        let prefix = service.prefix();
        let roll = rng.random::<f64>();
        let (code, message) = if roll < 0.55 {
            match service {
                Service::Ec2 => {
                    let mut message = format!(
                        "You are not authorized to perform this operation. User: {} is not authorized to perform: ec2:{} on resource: {} because no identity-based policy allows the ec2:{} action. Encoded authorization failure message: ",
                        principal.arn, action.name, context.arn, action.name
                    );
                    push_token(&mut message, rng, 380);
                    ("Client.UnauthorizedOperation", message)
                }
                Service::S3 => ("AccessDenied", "Access Denied".to_owned()),
                _ => (
                    "AccessDenied",
                    format!(
                        "User: {} is not authorized to perform: {prefix}:{} on resource: {} because no identity-based policy allows the {prefix}:{} action",
                        principal.arn, action.name, context.arn, action.name
                    ),
                ),
            }
        } else if roll < 0.70 {
            match service {
                Service::Ec2 => ("Client.RequestLimitExceeded", "Request limit exceeded.".to_owned()),
                _ => ("ThrottlingException", "Rate exceeded".to_owned()),
            }
        } else {
            let (code, template) = service.not_found_error();
            let mut message = String::new();
            render(&mut message, template, context, rng);
            (code, message)
        };
        put_str(out, "errorCode", code);
        put_str(out, "errorMessage", &message);
    }
}

/// Whether the event's identity is a principal rather than an AWS service assuming a role
/// (which has no user name and no access key).
fn has_caller(action: &Action, draw: &Draw) -> bool {
    !(draw.via_service && is_service_identity(action))
}

fn is_service_identity(action: &Action) -> bool {
    action.name == "AssumeRole"
}

fn validate(config: &GeneratorConfig) -> Result<(), GeneratorConfigError> {
    if config.accounts.is_empty() {
        return Err(GeneratorConfigError::NoAccounts);
    }
    if let Some(bad) =
        config.accounts.iter().find(|account| account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(GeneratorConfigError::BadAccount(bad.clone()));
    }
    if config.regions.is_empty() {
        return Err(GeneratorConfigError::NoRegions);
    }
    let region_ok =
        |region: &String| !region.is_empty() && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(bad) = config.regions.iter().find(|region| !region_ok(region)) {
        return Err(GeneratorConfigError::BadRegion(bad.clone()));
    }
    let rate = config.events_per_second_of_event_time;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(GeneratorConfigError::BadRate(rate));
    }
    if config.principals_per_account == 0 {
        return Err(GeneratorConfigError::NoPrincipals);
    }
    if !(config.zipf_exponent.is_finite() && config.zipf_exponent >= 0.0) {
        return Err(GeneratorConfigError::BadExponent(config.zipf_exponent));
    }
    if !(0.0..=1.0).contains(&config.error_ratio) {
        return Err(GeneratorConfigError::BadErrorRatio(config.error_ratio));
    }
    Ok(())
}

fn write_session_attributes(out: &mut String, time_ms: i64, mfa: bool, rng: &mut StdRng, issuer: Option<(&str, bool)>) {
    key(out, "sessionContext");
    out.push('{');
    if let Some((issuer, _)) = issuer {
        put_raw(out, "sessionIssuer", issuer);
        put_raw(out, "webIdFederationData", "{}");
    }
    key(out, "attributes");
    out.push('{');
    let created = time_ms - rng.random_range(0..3_600_000);
    put_str(out, "creationDate", &format_event_time(created));
    put_str(out, "mfaAuthenticated", if mfa { "true" } else { "false" });
    out.push('}');
    if let Some((_, true)) = issuer {
        put_str(out, "ec2RoleDelivery", "2.0");
    }
    out.push('}');
}

fn write_resources(out: &mut String, action: &Action, context: &TemplateContext<'_>) {
    let kind = action.service.resource_kind();
    key(out, "resources");
    out.push('[');
    if action.service == Service::S3 && action.data && action.name != "ListObjects" {
        let _ = write!(out, r#"{{"type":"AWS::S3::Object","ARN":"{}/{}"}},"#, context.arn, context.object_key);
    }
    let _ = write!(
        out,
        r#"{{"accountId":"{}","type":"{}","ARN":"{}"}}]"#,
        context.account,
        kind.cloudformation_type(),
        context.arn
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use trailkeeper_core::{Category, RecordDefaults, parse_record};

    use super::template::substitute;
    use super::text::push_display_time;
    use super::*;

    const DEFAULTS: RecordDefaults<'static> = RecordDefaults { account_id: "000000000000", region: "us-east-1" };

    fn generator(seed: u64) -> Generator {
        Generator::new(GeneratorConfig { seed, ..GeneratorConfig::default() }).unwrap()
    }

    fn no_ids() -> impl FnMut() -> String {
        || panic!("every generated record carries an eventID")
    }

    #[test]
    fn the_same_seed_yields_the_same_records() {
        let mut first = generator(42);
        let mut second = generator(42);
        let mut other = generator(43);
        let mut differs = false;
        for _ in 0..500 {
            let record = first.next_record();
            assert_eq!(record, second.next_record());
            differs |= record != other.next_record();
        }
        assert!(differs);
        assert_eq!(first.sample_username(), second.sample_username());
        assert_eq!(first.sample_resource_name(), second.sample_resource_name());
    }

    #[test]
    fn sampling_does_not_change_the_records() {
        let mut sampled = generator(5);
        let mut plain = generator(5);
        for _ in 0..100 {
            sampled.sample_event_name();
            sampled.sample_username();
            assert_eq!(sampled.next_record(), plain.next_record());
        }
    }

    #[test]
    fn every_record_parses_and_has_realistic_proportions() {
        let mut generator = generator(7);
        let count = 20_000;
        let (mut bytes, mut errors, mut read_only, mut data, mut with_resources) = (0usize, 0, 0, 0, 0);
        let mut event_ids = HashSet::new();
        let mut previous_time = i64::MIN;
        for _ in 0..count {
            let raw = generator.next_record();
            let record = parse_record(&raw, DEFAULTS, &mut no_ids())
                .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&raw)));
            assert_eq!(record.json, raw, "records are minified already");
            assert!(event_ids.insert(record.fields.event_id().to_owned()), "duplicate eventID");
            assert!(record.event_time_ms >= previous_time);
            previous_time = record.event_time_ms;
            let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            let version = value["eventVersion"].as_str().unwrap();
            assert!(["1.09", "1.10", "1.11"].contains(&version));
            bytes += raw.len();
            errors += usize::from(value.get("errorCode").is_some());
            read_only += usize::from(record.fields.read_only == Some(true));
            data += usize::from(record.category == Category::Data);
            with_resources += usize::from(record.fields.resources().len() > 0);
        }
        let share = |n: usize| n as f64 / f64::from(count);
        let mean = bytes as f64 / f64::from(count);
        assert!((1024.0..=2048.0).contains(&mean), "mean size {mean}");
        assert!((0.016..=0.024).contains(&share(errors)), "error share {}", share(errors));
        assert!((0.66..=0.74).contains(&share(read_only)), "read-only share {}", share(read_only));
        assert!((0.02..=0.10).contains(&share(data)), "data share {}", share(data));
        assert!((0.2..=0.6).contains(&share(with_resources)), "resources share {}", share(with_resources));
    }

    #[test]
    fn event_time_advances_at_the_configured_rate() {
        let config = GeneratorConfig { events_per_second_of_event_time: 10.0, ..GeneratorConfig::default() };
        let start = config.start_time_ms;
        let mut generator = Generator::new(config).unwrap();
        let times: Vec<i64> = (0..21)
            .map(|_| parse_record(&generator.next_record(), DEFAULTS, &mut no_ids()).unwrap().event_time_ms)
            .collect();
        assert_eq!(times[0], start);
        assert_eq!(times[20], start + 2_000);
    }

    #[test]
    fn users_and_resources_follow_a_zipf_law() {
        let mut generator = generator(11);
        let mut users = std::collections::HashMap::<String, u32>::new();
        for _ in 0..20_000 {
            let raw = generator.next_record();
            let record = parse_record(&raw, DEFAULTS, &mut no_ids()).unwrap();
            if let Some(user) = record.fields.username() {
                *users.entry(user.to_owned()).or_default() += 1;
            }
        }
        let mut counts: Vec<u32> = users.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // With s = 1.1 over 3,200 principals the busiest takes ~14% and the tenth ~1%.
        assert!(counts.len() > 500, "{} distinct users", counts.len());
        assert!(counts[0] > 5 * counts[9], "head {} vs tenth {}", counts[0], counts[9]);
    }

    #[test]
    fn sampled_lookup_values_occur_in_the_records() {
        let mut generator = generator(3);
        let mut usernames = HashSet::new();
        let mut resources = HashSet::new();
        let mut access_keys = HashSet::new();
        let mut event_names = HashSet::new();
        for _ in 0..20_000 {
            let record = parse_record(&generator.next_record(), DEFAULTS, &mut no_ids()).unwrap();
            if record.category != Category::Management {
                continue;
            }
            usernames.extend(record.fields.username().map(str::to_owned));
            access_keys.extend(record.fields.access_key_id().map(str::to_owned));
            event_names.insert(record.fields.event_name().to_owned());
            resources
                .extend(record.fields.resources().filter_map(|resource| resource.resource_name.map(str::to_owned)));
        }
        let hits = |found: &dyn Fn(&mut Generator) -> bool, generator: &mut Generator| {
            (0..200).filter(|_| found(generator)).count()
        };
        assert!(hits(&|g| usernames.contains(&g.sample_username()), &mut generator) > 180);
        assert!(hits(&|g| access_keys.contains(&g.sample_access_key_id()), &mut generator) > 180);
        assert!(hits(&|g| event_names.contains(g.sample_event_name()), &mut generator) > 190);
        assert!(hits(&|g| resources.contains(&g.sample_resource_name()), &mut generator) > 150);
        let id = generator.sample_event_id(10);
        assert!((0..10).any(|sequence| generator.event_id(sequence) == id));
    }

    #[test]
    fn templates_use_only_known_placeholders() {
        let context = TemplateContext {
            name: "n",
            arn: "a",
            region: "r",
            account: "1",
            user: "u",
            session: "s".to_owned(),
            object_key: "k".to_owned(),
            time_ms: 0,
            event_time: "1970-01-01T00:00:00Z",
        };
        let mut rng = StdRng::seed_from_u64(0);
        let services = ACTIONS.iter().map(|action| action.service.not_found_error().1);
        let templates = ACTIONS.iter().flat_map(|action| [action.request, action.response]).chain(services);
        for template in templates {
            let mut rest = template;
            while let Some(dollar) = rest.find('$') {
                let after = &rest[dollar + 1..];
                let name: String = after.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit()).collect();
                assert!(
                    name.is_empty() || substitute(&mut String::new(), &name, &context, &mut rng),
                    "unknown placeholder ${name} in {template}"
                );
                rest = after;
            }
        }
    }

    #[test]
    fn display_time_and_cli_names() {
        let mut out = String::new();
        push_display_time(&mut out, 1_793_494_800_000);
        assert_eq!(out, "Nov 1, 2026, 1:00:00 AM");
        assert_eq!(kebab_case("DescribeInstances"), "describe-instances");
        assert_eq!(kebab_case("GetFunction20150331v2"), "get-function");
        assert_eq!(kebab_case("DescribeDBInstances"), "describe-db-instances");
    }

    #[test]
    fn refuses_bad_configurations() {
        let bad = |config: GeneratorConfig| Generator::new(config).unwrap_err();
        let base = GeneratorConfig::default;
        assert_eq!(bad(GeneratorConfig { accounts: vec![], ..base() }), GeneratorConfigError::NoAccounts);
        assert!(matches!(
            bad(GeneratorConfig { accounts: vec!["12".into()], ..base() }),
            GeneratorConfigError::BadAccount(_)
        ));
        assert!(matches!(
            bad(GeneratorConfig { regions: vec!["a/b".into()], ..base() }),
            GeneratorConfigError::BadRegion(_)
        ));
        assert!(matches!(
            bad(GeneratorConfig { events_per_second_of_event_time: 0.0, ..base() }),
            GeneratorConfigError::BadRate(_)
        ));
        assert!(matches!(bad(GeneratorConfig { error_ratio: 1.5, ..base() }), GeneratorConfigError::BadErrorRatio(_)));
    }
}

//! The callers of generated events: IAM users, role sessions and root users, each with
//! the client program, source address and access key it always uses.

use rand::Rng;
use rand::rngs::StdRng;

use super::GeneratorConfig;
use super::text::{ENVIRONMENTS, WORDS, push_hex, push_key_chars};

const FIRST_NAMES: [&str; 32] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf", "zoe", "amir", "bianca", "chen", "dmitri",
    "elena", "fatima", "goran", "hana", "ines", "jonas", "kenji",
];

const LAST_NAMES: [&str; 32] = [
    "nguyen", "smith", "garcia", "mueller", "rossi", "kowalski", "tanaka", "silva", "dubois", "jensen", "okafor",
    "patel", "kim", "novak", "haddad", "larsen", "moreau", "ivanova", "costa", "fischer", "yilmaz", "sato", "andersen",
    "lopez", "brown", "wilson", "khan", "horvat", "berg", "ortiz", "lee", "walsh",
];

/// The program a principal calls AWS with; decides its user agent and TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Client {
    Console,
    Cli,
    Boto3Lambda,
    GoSdk,
    JavaSdk,
    Terraform,
    SsmAgent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PrincipalKind {
    IamUser,
    AssumedRole { role_name: String, role_id: String, ec2_instance: bool },
    Root,
}

/// One caller: an IAM user, a role session or an account's root user.
#[derive(Debug, Clone)]
pub(super) struct Principal {
    pub(super) kind: PrincipalKind,
    pub(super) account: usize,
    /// `Event.Username` in LookupEvents: the user name or the role session name.
    pub(super) username: String,
    pub(super) arn: String,
    pub(super) principal_id: String,
    pub(super) access_key_id: String,
    pub(super) client: Client,
    pub(super) source_ip: String,
    pub(super) mfa_authenticated: bool,
    /// Whether the principal runs inside a VPC (and so may use VPC endpoints).
    pub(super) workload: bool,
}

pub(super) fn make_principal(config: &GeneratorConfig, rng: &mut StdRng, account: usize, index: usize) -> Principal {
    let account_id = config.accounts[account].as_str();
    let word = WORDS[rng.random_range(0..WORDS.len())];
    let env = ENVIRONMENTS[rng.random_range(0..ENVIRONMENTS.len())];
    let person = format!(
        "{}.{}",
        FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())],
        LAST_NAMES[rng.random_range(0..LAST_NAMES.len())]
    );
    let id = |prefix: &str, rng: &mut StdRng| {
        let mut text = prefix.to_owned();
        push_key_chars(&mut text, rng, 17);
        text
    };
    let office_ip = format!("203.0.113.{}", 10 + (account * 16 + index % 16));
    let cloud_ip = format!(
        "{}.{}.{}.{}",
        rng.random_range(3..54),
        rng.random::<u8>(),
        rng.random::<u8>(),
        rng.random_range(1..255)
    );
    if index == 0 {
        return Principal {
            kind: PrincipalKind::Root,
            account,
            username: "root".to_owned(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            principal_id: account_id.to_owned(),
            access_key_id: id("ASIA", rng)[..20].to_owned(),
            client: Client::Console,
            source_ip: office_ip,
            mfa_authenticated: true,
            workload: false,
        };
    }
    let roll = rng.random::<f64>();
    let (kind, username, client, source_ip, workload) = if roll < 0.28 {
        let username = format!("{person}{}", index);
        let client = if rng.random_bool(0.5) { Client::Console } else { Client::Cli };
        (PrincipalKind::IamUser, username, client, office_ip, false)
    } else if roll < 0.38 {
        let (username, client) = if rng.random_bool(0.5) {
            (format!("svc-{word}-{env}-{index}"), Client::JavaSdk)
        } else {
            (format!("terraform-{word}-{index}"), Client::Terraform)
        };
        (PrincipalKind::IamUser, username, client, cloud_ip, true)
    } else {
        let role_id = id("AROA", rng);
        let style = rng.random_range(0..5);
        let (role_name, session, client, source_ip, workload, ec2_instance) = match style {
            0 => {
                let permission_set = ["AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess"][index % 3];
                let mut role = format!("AWSReservedSSO_{permission_set}_");
                push_hex(&mut role, rng, 16, false);
                let client = if rng.random_bool(0.6) { Client::Console } else { Client::Cli };
                (role, format!("{person}{index}@example.com"), client, office_ip, false, false)
            }
            1 => {
                let function = format!("{word}-{env}-handler-{index}");
                (format!("{function}-exec"), function, Client::Boto3Lambda, cloud_ip, true, false)
            }
            2 => {
                let mut instance = "i-0".to_owned();
                push_hex(&mut instance, rng, 16, false);
                (format!("{word}-{env}-node-role"), instance, Client::SsmAgent, cloud_ip, true, true)
            }
            3 => (
                format!("eks-{word}-{env}-irsa"),
                format!("aws-go-sdk-{}", 1_793_000_000_000_000_000u64 + rng.random_range(0..1_000_000_000_000u64)),
                Client::GoSdk,
                cloud_ip,
                true,
                false,
            ),
            _ => (
                format!("github-actions-{word}-deploy"),
                format!("GitHubActions-{index}"),
                Client::Terraform,
                cloud_ip,
                true,
                false,
            ),
        };
        (PrincipalKind::AssumedRole { role_name, role_id, ec2_instance }, session, client, source_ip, workload)
    };
    let (arn, principal_id, access_key_id) = match &kind {
        PrincipalKind::AssumedRole { role_name, role_id, .. } => (
            format!("arn:aws:sts::{account_id}:assumed-role/{role_name}/{username}"),
            format!("{role_id}:{username}"),
            id("ASIA", rng)[..20].to_owned(),
        ),
        _ => (format!("arn:aws:iam::{account_id}:user/{username}"), id("AIDA", rng), id("AKIA", rng)[..20].to_owned()),
    };
    Principal {
        kind,
        account,
        username,
        arn,
        principal_id,
        access_key_id,
        client,
        source_ip,
        mfa_authenticated: client == Client::Console && rng.random_bool(0.8),
        workload,
    }
}

//! The resources generated events act on: per-account pools of each kind, named and
//! given ARNs deterministically from the seed and the Zipf rank.

use super::text::{ENVIRONMENTS, WORDS, mix, uuid_from_bits};
use crate::catalog::ResourceKind;

/// How many resources of each kind one account holds: a handful of trails, thousands of
/// parameters and log groups.
pub(super) fn pool_size(kind: ResourceKind) -> usize {
    match kind {
        ResourceKind::Trail => 4,
        ResourceKind::DbInstance => 60,
        ResourceKind::Topic => 120,
        ResourceKind::Key => 200,
        ResourceKind::Queue => 250,
        ResourceKind::Repository => 250,
        ResourceKind::Table => 300,
        ResourceKind::Secret => 300,
        ResourceKind::Role => 400,
        ResourceKind::Bucket => 500,
        ResourceKind::Function => 600,
        ResourceKind::LogGroup => 1_500,
        ResourceKind::Parameter => 2_000,
        ResourceKind::Instance => 3_000,
    }
}

pub(super) const RESOURCE_KINDS: [ResourceKind; 14] = [
    ResourceKind::Role,
    ResourceKind::Key,
    ResourceKind::Instance,
    ResourceKind::Bucket,
    ResourceKind::Function,
    ResourceKind::Table,
    ResourceKind::Parameter,
    ResourceKind::Secret,
    ResourceKind::Trail,
    ResourceKind::LogGroup,
    ResourceKind::DbInstance,
    ResourceKind::Repository,
    ResourceKind::Topic,
    ResourceKind::Queue,
];

/// A resource's short name: deterministic in (seed, kind, account, rank) and unique per
/// account and kind because the rank is part of it.
pub(super) fn resource_name(seed: u64, kind: ResourceKind, account: &str, rank: usize) -> String {
    let hash = mix(seed ^ ((kind as u64) << 56) ^ account_number(account), rank as u64);
    let word = WORDS[(hash % WORDS.len() as u64) as usize];
    let env = ENVIRONMENTS[((hash >> 8) % ENVIRONMENTS.len() as u64) as usize];
    match kind {
        ResourceKind::Role => format!("{word}-{env}-service-role-{rank}"),
        ResourceKind::Key => uuid_from_bits(hash, mix(hash, 1)),
        ResourceKind::Instance => format!("i-0{:016x}", mix(hash, 2)),
        ResourceKind::Bucket => format!("{word}-{env}-{account}-{rank}"),
        ResourceKind::Function => format!("{word}-{env}-handler-{rank}"),
        ResourceKind::Table => format!("{word}-{env}-table-{rank}"),
        ResourceKind::Parameter => format!("/{word}/{env}/config-{rank}"),
        ResourceKind::Secret => format!("{word}/{env}/db-credentials-{rank}"),
        ResourceKind::Trail => format!("org-trail-{rank}"),
        ResourceKind::LogGroup => format!("/aws/lambda/{word}-{env}-handler-{rank}"),
        ResourceKind::DbInstance => format!("{word}-{env}-postgres-{rank}"),
        ResourceKind::Repository => format!("{word}/{env}-service-{rank}"),
        ResourceKind::Topic => format!("{word}-{env}-alerts-{rank}"),
        ResourceKind::Queue => format!("{word}-{env}-jobs-{rank}"),
    }
}

pub(super) fn resource_arn(seed: u64, kind: ResourceKind, account: &str, region: &str, rank: usize) -> String {
    let name = resource_name(seed, kind, account, rank);
    match kind {
        ResourceKind::Role => format!("arn:aws:iam::{account}:role/{name}"),
        ResourceKind::Key => format!("arn:aws:kms:{region}:{account}:key/{name}"),
        ResourceKind::Instance => format!("arn:aws:ec2:{region}:{account}:instance/{name}"),
        ResourceKind::Bucket => format!("arn:aws:s3:::{name}"),
        ResourceKind::Function => format!("arn:aws:lambda:{region}:{account}:function:{name}"),
        ResourceKind::Table => format!("arn:aws:dynamodb:{region}:{account}:table/{name}"),
        ResourceKind::Parameter => format!("arn:aws:ssm:{region}:{account}:parameter{name}"),
        ResourceKind::Secret => {
            let suffix = mix(seed, rank as u64) & 0xff_ffff;
            format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix:06x}")
        }
        ResourceKind::Trail => format!("arn:aws:cloudtrail:{region}:{account}:trail/{name}"),
        ResourceKind::LogGroup => format!("arn:aws:logs:{region}:{account}:log-group:{name}"),
        ResourceKind::DbInstance => format!("arn:aws:rds:{region}:{account}:db:{name}"),
        ResourceKind::Repository => format!("arn:aws:ecr:{region}:{account}:repository/{name}"),
        ResourceKind::Topic => format!("arn:aws:sns:{region}:{account}:{name}"),
        ResourceKind::Queue => format!("arn:aws:sqs:{region}:{account}:{name}"),
    }
}

pub(super) fn account_number(account: &str) -> u64 {
    account.bytes().fold(0u64, |number, digit| number.wrapping_mul(10).wrapping_add(u64::from(digit - b'0')))
}

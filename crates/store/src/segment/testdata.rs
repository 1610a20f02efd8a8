//! Small fixtures for the segment tests: valid CloudTrail records with random event and
//! request IDs, parsed as ingest parses them. Deterministic for a given seed. Layout and
//! size measurements use the realistic generator instead
//! (`crates/bench/examples/segment_layout.rs`).

use trailkeeper_core::{RecordDefaults, parse_record};

use crate::StoredEvent;

pub(super) const ACCOUNT: &str = "123456789012";
pub(super) const REGION: &str = "us-east-1";
/// 2026-03-14T00:00:00Z.
pub(super) const DAY_START_MS: i64 = 1_773_446_400_000;

/// (eventSource, eventName, readOnly).
const ACTIONS: &[(&str, &str, bool)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("sts.amazonaws.com", "AssumeRole", false),
    ("s3.amazonaws.com", "ListBuckets", true),
    ("kms.amazonaws.com", "Decrypt", true),
    ("iam.amazonaws.com", "CreateAccessKey", false),
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

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next_u64(), self.next_u64());
        format!("{:016x}{:016x}", a, b)
    }

    /// The next event as the log would store it; times mostly rise, some arrive late.
    pub(super) fn next_event(&mut self) -> StoredEvent {
        self.time_ms += (self.next_u64() % 9) as i64;
        let late = if self.next_u64().is_multiple_of(10) { (self.next_u64() % 5_000) as i64 } else { 0 };
        let time_ms = (self.time_ms - late).max(DAY_START_MS);
        let (source, name, read_only) = ACTIONS[(self.next_u64() % ACTIONS.len() as u64) as usize];
        let user = self.next_u64() % 7;
        let seconds = (time_ms - DAY_START_MS) / 1000;
        let json = format!(
            concat!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","userName":"user-{user}","#,
                r#""accessKeyId":"AKIA{user:016}"}},"eventTime":"2026-03-14T{hh:02}:{mm:02}:{ss:02}Z","#,
                r#""eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","#,
                r#""requestID":"{request_id}","eventID":"{event_id}","readOnly":{read_only},"#,
                r#""eventType":"AwsApiCall","recipientAccountId":"{account}","eventCategory":"Management"}}"#
            ),
            user = user,
            hh = seconds / 3600,
            mm = seconds / 60 % 60,
            ss = seconds % 60,
            source = source,
            name = name,
            region = REGION,
            request_id = self.uuid(),
            event_id = self.uuid(),
            read_only = read_only,
            account = ACCOUNT,
        );
        let defaults = RecordDefaults { account_id: ACCOUNT, region: REGION };
        let parsed = parse_record(json.as_bytes(), defaults, &mut String::new)
            .unwrap_or_else(|error| panic!("fixture record is invalid: {error}: {json}"));
        let seq = self.next_seq;
        self.next_seq += 1;
        StoredEvent {
            seq,
            event_time_ms: parsed.event_time_ms,
            ingest_time_ms: parsed.event_time_ms + 2_000 + (self.next_u64() % 500) as i64,
            category: parsed.category,
            fields: parsed.fields,
            json: parsed.json,
            id_values: parsed.id_values,
        }
    }
}

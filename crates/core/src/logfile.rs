//! CloudTrail's log file layout: where a trail writes each file in its bucket and what the
//! file holds.
//!
//! ```text
//! [<prefix>/]AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/
//!     <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 characters>.json.gz
//! ```
//!
//! The time is the delivery time to the minute; the 16 characters only keep names apart.
//! Trailkeeper derives them from what the file covers, so that delivering the same batch
//! again after a crash names the same file.

use crate::time::civil_from_days;

/// The characters of a file name's unique part: letters and digits, as CloudTrail uses.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Where one log file goes inside its bucket.
#[derive(Debug, Clone, Copy)]
pub struct LogFileName<'a> {
    /// The trail's `S3KeyPrefix`, if any.
    pub prefix: Option<&'a str>,
    pub account_id: &'a str,
    pub region: &'a str,
    pub delivered_ms: i64,
    /// A number naming the batch; its base-62 form is the file name's unique part.
    pub seed: u128,
}

impl LogFileName<'_> {
    /// The object key, e.g.
    /// `AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz`.
    pub fn key(&self) -> String {
        let days = self.delivered_ms.div_euclid(86_400_000);
        let minute_of_day = self.delivered_ms.rem_euclid(86_400_000) / 60_000;
        let (year, month, day) = civil_from_days(days);
        let (hour, minute) = (minute_of_day / 60, minute_of_day % 60);
        let prefix = key_prefix(self.prefix);
        let (account, region) = (self.account_id, self.region);
        format!(
            "{prefix}AWSLogs/{account}/CloudTrail/{region}/{year:04}/{month:02}/{day:02}/\
             {account}_CloudTrail_{region}_{year:04}{month:02}{day:02}T{hour:02}{minute:02}Z_{}.json.gz",
            unique_part(self.seed)
        )
    }
}

/// A trail's `S3KeyPrefix` as it starts an object key: with one trailing slash, or
/// nothing when there is no prefix.
pub fn key_prefix(prefix: Option<&str>) -> String {
    match prefix {
        Some(prefix) if !prefix.is_empty() => format!("{}/", prefix.trim_end_matches('/')),
        _ => String::new(),
    }
}

/// 16 base-62 characters of `seed`.
pub fn unique_part(mut seed: u128) -> String {
    let mut out = [0u8; 16];
    for slot in &mut out {
        *slot = ALPHABET[(seed % 62) as usize];
        seed /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// The opening and closing bytes of a log file's JSON: the records go between them,
/// separated by commas, each exactly as stored.
pub const RECORDS_OPEN: &[u8] = b"{\"Records\":[";
pub const RECORDS_CLOSE: &[u8] = b"]}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_as_cloudtrail_does() {
        let name = LogFileName {
            prefix: None,
            account_id: "111122223333",
            region: "us-east-2",
            delivered_ms: 1_438_395_000_000, // 2015-08-01T02:10:00Z
            seed: 42,
        };
        let key = name.key();
        assert!(
            key.starts_with(
                "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_"
            ),
            "{key}"
        );
        assert!(key.ends_with(".json.gz"));
        let unique = &key[key.len() - 24..key.len() - 8];
        assert_eq!(unique.len(), 16);
        assert!(unique.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn puts_the_prefix_first() {
        let name = LogFileName { prefix: Some("org/logs/"), account_id: "1", region: "r", delivered_ms: 0, seed: 0 };
        assert_eq!(
            name.key(),
            "org/logs/AWSLogs/1/CloudTrail/r/1970/01/01/1_CloudTrail_r_19700101T0000Z_0000000000000000.json.gz"
        );
    }

    #[test]
    fn different_seeds_name_different_files() {
        assert_ne!(unique_part(1), unique_part(2));
        assert_eq!(unique_part(u128::MAX).len(), 16);
    }
}

//! A damaged `.idx` sidecar beside a good Parquet file: opening the segment and every lookup
//! on it never panic, whatever the index says. Since indexes are loaded when a lookup needs
//! them, this parser runs on the request path.
//!
//! Random bytes would stop at the checksum, so the input is a list of edits to the body and
//! the ids section of a real index (cut the body, then overwrite bytes of either), framed
//! again with a valid header and CRC: every case reaches the file's own checks, under each
//! format version.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trailkeeper_core::{LookupKey, RecordDefaults, parse_record};
use trailkeeper_store::segment::{IndexCache, PageCache, Segment, write_segment};
use trailkeeper_store::{HistoryKind, StoredEvent};

/// Magic, version, CRC, then the body's raw and compressed lengths (see `segment/index.rs`).
const HEADER_LEN: usize = 32;

struct Fixture {
    _dir: tempfile::TempDir,
    parquet: PathBuf,
    index: PathBuf,
    header: Vec<u8>,
    body: Vec<u8>,
    ids: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let events: Vec<StoredEvent> = (0..40u64)
            .map(|seq| {
                let json = format!(
                    r#"{{"eventTime":"2026-11-01T10:00:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"Op{}","eventID":"id-{seq}","awsRegion":"us-east-1","userIdentity":{{"userName":"user-{}"}},"resources":[{{"ARN":"arn:{}","type":"AWS::S3::Bucket"}}]}}"#,
                    seq % 60,
                    seq % 3,
                    seq % 5,
                    seq % 7
                );
                let defaults = RecordDefaults { account_id: "123456789012", region: "us-east-1" };
                let record = parse_record(json.as_bytes(), defaults, &mut String::new).expect("a valid record");
                StoredEvent::from_record(seq + 1, 0, record)
            })
            .collect();
        let segment = write_segment(dir.path(), &events.iter().collect::<Vec<_>>()).expect("write");
        let parquet = segment.parquet_path().to_path_buf();
        let index = parquet.with_extension("idx");
        let file = std::fs::read(&index).expect("read idx");
        let body_end = HEADER_LEN + u64::from_le_bytes(file[24..32].try_into().expect("8 bytes")) as usize;
        let body = zstd::bulk::decompress(&file[HEADER_LEN..body_end], 1 << 20).expect("decompress");
        let ids = file[body_end..].to_vec();
        Fixture { _dir: dir, parquet, index, header: file[..HEADER_LEN].to_vec(), body, ids }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some((&cut, edits)) = data.split_first() else { return };
    let (mut body, mut ids) = (fixture.body.clone(), fixture.ids.clone());
    if cut > 0 {
        body.truncate(body.len() * usize::from(cut) / 256);
    }
    for edit in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % (body.len() + ids.len()).max(1);
        if at < body.len() {
            body[at] = edit[2];
        } else if let Some(byte) = ids.get_mut(at - body.len()) {
            *byte = edit[2];
        }
    }
    let compressed = zstd::bulk::compress(&body, 1).expect("compress");
    let mut file = fixture.header.clone();
    // One input in three claims version 1 (no file order, one hash per row, no ids
    // section), one in three version 2 (the same with a file order).
    let version = match edits.len() % 3 {
        1 => Some(1u32),
        2 => Some(2),
        _ => None,
    };
    if let Some(version) = version {
        file[8..12].copy_from_slice(&version.to_le_bytes());
        ids.clear();
    }
    file[16..24].copy_from_slice(&(body.len() as u64).to_le_bytes());
    file[24..32].copy_from_slice(&(compressed.len() as u64).to_le_bytes());
    file.extend_from_slice(&compressed);
    file.extend_from_slice(&ids);
    let crc = crc32c::crc32c(&file[16..]);
    file[12..16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&fixture.index, &file).expect("write idx");

    let Ok(segment) = Segment::open(&fixture.parquet) else { return };
    let indexes = IndexCache::new(0);
    let pages = PageCache::new(0);
    let attributes = [
        None,
        Some((LookupKey::EventName, "Op1")),
        Some((LookupKey::Username, "user-2")),
        Some((LookupKey::ResourceName, "arn:3")),
        Some((LookupKey::EventId, "id-7")),
    ];
    for attribute in attributes {
        for kind in [HistoryKind::Management, HistoryKind::Insight] {
            let Ok(scan) = segment.scan(&indexes, kind, attribute, None, None, None) else { continue };
            let rows: Vec<u32> = scan.map(|found| found.row).collect();
            let _ = segment.read_json(&rows, &pages);
        }
    }
    let _ = segment.find_event_id("id-7", &indexes);
    let _ = segment.contains_event_id("id-8");
    let _ = segment.rows_in_seq_range(0, u64::MAX, &indexes);
});

//! The follower on a real log: trees equal to the RFC 9162 tree of each stream's events,
//! proofs that verify, restarts and torn tails, and offline verification naming what was
//! altered, dropped, inserted or expired.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use trailkeeper_core::merkle::{LeafHashes, leaf_hash, tree_hash, verify_consistency, verify_inclusion};
use trailkeeper_core::record::{RecordDefaults, parse_record};

use super::verify::{Finding, verify_store};
use super::*;
use crate::segment::{read_all_rows, write_segment};
use crate::{LogOptions, NewEvent, StoredEvent};

const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

fn json(account: &str, region: &str, id: usize, time_ms: i64) -> String {
    let time = trailkeeper_core::time::format_event_time(time_ms);
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"{region}","eventID":"event-{id}","recipientAccountId":"{account}","eventCategory":"{}","requestParameters":{{"n":{id}}}}}"#,
        if id.is_multiple_of(5) { "Data" } else { "Management" }
    )
}

/// Event `id`: its account and Region cycle, so every tree gets some; `ingest_time_ms`
/// decides what retention drops.
fn event(id: usize, ingest_time_ms: i64) -> NewEvent {
    let (account, region) = (ACCOUNTS[id % 2], REGIONS[id / 2 % 2]);
    let text = json(account, region, id, 1_773_446_400_000 + id as i64 * 1000);
    let record =
        parse_record(text.as_bytes(), RecordDefaults { account_id: account, region }, &mut String::new).unwrap();
    NewEvent { record, ingest_time_ms }
}

fn append(log: &EventLog, events: Vec<NewEvent>) {
    let (tx, rx) = mpsc::channel();
    log.append(events, move |result| tx.send(result).unwrap()).unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
}

fn options() -> MerkleOptions {
    // Batches that do not line up with chunks, and a quick poll.
    MerkleOptions { batch_events: 700, poll: Duration::from_millis(5), sync: false }
}

fn log_options() -> LogOptions {
    LogOptions { sync: false, ..LogOptions::default() }
}

fn caught_up(trees: &MerkleTrees, log: &EventLog) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while trees.through_seq() < log.last_seq() {
        assert!(Instant::now() < deadline, "the follower did not catch up");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each tree's leaves, computed independently: the log read in order, split by stream.
fn expected_leaves(log: &EventLog) -> BTreeMap<TreeId, Vec<(u64, Hash)>> {
    let mut trees: BTreeMap<TreeId, Vec<(u64, Hash)>> = BTreeMap::new();
    for entry in log.read_log(0, usize::MAX).unwrap().entries {
        trees
            .entry(TreeId::new(&*entry.account_id, &*entry.region))
            .or_default()
            .push((entry.seq, leaf_hash(&entry.json)));
    }
    trees
}

/// Checks every head, every inclusion proof and consistency proofs between several sizes.
fn assert_trees_match(trees: &MerkleTrees, expected: &BTreeMap<TreeId, Vec<(u64, Hash)>>) {
    let heads: BTreeMap<TreeId, TreeHead> = trees.heads().into_iter().collect();
    assert_eq!(heads.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (id, leaves) in expected {
        let hashes: Vec<Hash> = leaves.iter().map(|&(_, hash)| hash).collect();
        let head = heads[id];
        assert_eq!(head, TreeHead { size: hashes.len() as u64, root: tree_hash(&hashes) }, "{id}");
        // A quarter of the leaves, and both ends of every chunk, keep this quick in debug
        // builds; the core's properties cover every leaf of every tree shape.
        let sampled = leaves.iter().enumerate().filter(|(index, _)| {
            let offset = *index as u64 % CHUNK_LEAVES;
            index.is_multiple_of(4) || offset == 0 || offset == CHUNK_LEAVES - 1 || index + 1 == leaves.len()
        });
        for (index, &(seq, leaf)) in sampled {
            let proof = trees.inclusion_proof(id, seq, head.size).unwrap();
            assert_eq!(proof.leaf_index, index as u64);
            assert_eq!(verify_inclusion(&leaf, proof.leaf_index, head.size, &proof.path, &head.root), Ok(()));
        }
        let size = head.size;
        for old_size in [0, 1, size / 3, size / 2, size.saturating_sub(1), size] {
            let old_root = trees.root_at(id, old_size).unwrap();
            assert_eq!(old_root, tree_hash(&hashes[..old_size as usize]));
            let proof = trees.consistency_proof(id, old_size, size).unwrap();
            assert_eq!(
                proof,
                merkle::consistency_proof(&mut LeafHashes(&hashes), old_size, size).unwrap(),
                "the same proof as from the leaves themselves"
            );
            assert_eq!(verify_consistency(old_size, size, &old_root, &head.root, &proof), Ok(()));
        }
    }
}

#[test]
fn builds_one_rfc_9162_tree_per_stream_with_proofs_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), log_options()).unwrap();
    let trees = MerkleTrees::open(dir.path(), log.clone(), options()).unwrap();
    // Over many chunks in every tree, appended in uneven requests.
    let mut next = 0;
    for size in [1, 2, 997, 3000, 4500] {
        append(&log, (next..next + size).map(|id| event(id, 1_000)).collect());
        next += size;
    }
    caught_up(&trees, &log);
    assert_trees_match(&trees, &expected_leaves(&log));

    let id = TreeId::new(ACCOUNTS[0], REGIONS[0]);
    let head = trees.head(&id);
    assert!(head.size > 2 * CHUNK_LEAVES);
    let (first_seq, _) = expected_leaves(&log)[&id][0];
    assert!(matches!(trees.inclusion_proof(&id, first_seq, head.size + 1), Err(MerkleError::SizeOutOfRange { .. })));
    assert!(matches!(trees.inclusion_proof(&id, log.last_seq() + 1, 1), Err(MerkleError::NotYetInTree { .. })));
    let other_stream_seq = expected_leaves(&log)[&TreeId::new(ACCOUNTS[1], REGIONS[0])][0].0;
    assert!(matches!(trees.inclusion_proof(&id, other_stream_seq, head.size), Err(MerkleError::NotInTree { .. })));
    assert!(matches!(trees.inclusion_proof(&id, first_seq, 0), Err(MerkleError::LeafOutsideSize { .. })));
    assert!(matches!(trees.consistency_proof(&id, 5, 4), Err(MerkleError::SizesOutOfOrder { .. })));
    assert_eq!(trees.head(&TreeId::new("999999999999", "us-east-1")).size, 0);
    trees.close();
    log.close();
}

#[test]
fn follows_sealed_events_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EventLog::open(dir.path(), log_options()).unwrap();
        append(&log, (0..1500).map(|id| event(id, 1_000)).collect());
        // The log is sealed before any tree exists: the follower reads segments back.
        log.close();
    }
    let log = EventLog::open(dir.path(), log_options()).unwrap();
    assert!(log.stats().segments > 0);
    let trees = MerkleTrees::open(dir.path(), log.clone(), options()).unwrap();
    caught_up(&trees, &log);
    let before = trees.heads();
    trees.close();

    let trees = MerkleTrees::open(dir.path(), log.clone(), options()).unwrap();
    assert_eq!(trees.heads(), before, "a restart reopens the same trees");
    append(&log, (1500..2600).map(|id| event(id, 1_000)).collect());
    caught_up(&trees, &log);
    assert_trees_match(&trees, &expected_leaves(&log));
    trees.close();
    log.close();
}

#[test]
fn cuts_off_a_torn_tail_and_redoes_what_was_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path(), log_options()).unwrap();
    let trees = MerkleTrees::open(dir.path(), log.clone(), options()).unwrap();
    append(&log, (0..2100).map(|id| event(id, 1_000)).collect());
    caught_up(&trees, &log);
    let recorded_state = std::fs::read(dir.path().join("merkle/state.json")).unwrap();
    append(&log, (2100..4300).map(|id| event(id, 1_000)).collect());
    caught_up(&trees, &log);
    let heads = trees.heads();
    trees.close();

    // A crash after the tree files were written but before the state file recorded them:
    // the old state, and half a record torn off the end of every file.
    std::fs::write(dir.path().join("merkle/state.json"), &recorded_state).unwrap();
    for account in ACCOUNTS {
        for region in REGIONS {
            for name in ["leaves", "chunks"] {
                let path = dir.path().join(format!("merkle/account={account}/region={region}/{name}"));
                let file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
                std::io::Write::write_all(&mut &file, &[0xAB; 17]).unwrap();
            }
        }
    }
    // And a tree folder the state file never listed.
    std::fs::create_dir_all(dir.path().join("merkle/account=777777777777/region=us-east-1")).unwrap();

    let trees = MerkleTrees::open(dir.path(), log.clone(), options()).unwrap();
    assert!(!dir.path().join("merkle/account=777777777777/region=us-east-1").exists());
    caught_up(&trees, &log);
    assert_eq!(trees.heads(), heads, "the redone batches give the same trees");
    assert_trees_match(&trees, &expected_leaves(&log));
    trees.close();
    log.close();

    // Files shorter than their recorded size are damage, not a torn tail.
    let leaves = dir.path().join(format!("merkle/account={}/region={}/leaves", ACCOUNTS[0], REGIONS[0]));
    let length = std::fs::metadata(&leaves).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&leaves).unwrap().set_len(length - RECORD_BYTES as u64).unwrap();
    let log = EventLog::open(dir.path(), log_options()).unwrap();
    let error = MerkleTrees::open(dir.path(), log.clone(), options()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt, "{error}");
    log.close();
}

/// A sealed, stopped store with every event in its tree; returns the tree sizes.
fn sealed_store(dir: &Path, events: Vec<NewEvent>) -> BTreeMap<TreeId, Vec<u64>> {
    let log = EventLog::open(dir, log_options()).unwrap();
    let trees = MerkleTrees::open(dir, log.clone(), options()).unwrap();
    append(&log, events);
    caught_up(&trees, &log);
    let sizes = trees.heads().into_iter().map(|(id, head)| (id, vec![head.size])).collect();
    trees.close();
    log.close();
    sizes
}

fn segments_of(dir: &Path, id: &TreeId) -> Vec<std::path::PathBuf> {
    let (_, paths) = crate::sealed_segments(dir).unwrap();
    let prefix = dir.join(format!("segments/account={}/region={}", id.account_id, id.region));
    paths.into_iter().filter(|path| path.starts_with(&prefix)).collect()
}

/// Rewrites a sealed segment (Parquet and sidecar, as a careful intruder would) with
/// `change` applied to its events.
fn rewrite_segment(parquet: &Path, change: impl FnOnce(&mut Vec<StoredEvent>)) {
    let mut events = Vec::new();
    read_all_rows(parquet, |row| {
        // Every test record names its account and Region, so the defaults are never used.
        let defaults = RecordDefaults { account_id: ACCOUNTS[0], region: REGIONS[0] };
        let record = parse_record(row.event_json.as_bytes(), defaults, &mut String::new).unwrap();
        events.push(StoredEvent::from_record(row.seq as u64, 1_000, record));
    })
    .unwrap();
    change(&mut events);
    let scratch = tempfile::tempdir().unwrap();
    let written = write_segment(scratch.path(), &events.iter().collect::<Vec<_>>()).unwrap();
    std::fs::copy(written.parquet_path(), parquet).unwrap();
    std::fs::copy(written.parquet_path().with_extension("idx"), parquet.with_extension("idx")).unwrap();
}

#[test]
fn verification_of_an_untouched_store_finds_nothing_and_rebuilds_the_same_roots() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = sealed_store(dir.path(), (0..2500).map(|id| event(id, 1_000)).collect());
    let verification = verify_store(dir.path(), &sizes).unwrap();
    assert_eq!(verification.findings().count(), 0, "{:?}", verification.findings().collect::<Vec<_>>());
    let log = EventLog::open(dir.path(), log_options()).unwrap();
    let expected = expected_leaves(&log);
    log.close();
    for tree in &verification.trees {
        let hashes: Vec<Hash> = expected[&tree.id].iter().map(|&(_, hash)| hash).collect();
        assert_eq!(tree.matched, hashes.len() as u64);
        assert_eq!(tree.rebuilt_roots[&(hashes.len() as u64)], tree_hash(&hashes));
    }
}

#[test]
fn verification_names_altered_dropped_and_inserted_events() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = sealed_store(dir.path(), (0..400).map(|id| event(id, 1_000)).collect());
    let id = TreeId::new(ACCOUNTS[0], REGIONS[0]);
    let log = EventLog::open(dir.path(), log_options()).unwrap();
    let trees = MerkleTrees::open(dir.path(), log.clone(), options()).unwrap();
    let head = trees.head(&id);
    trees.close();
    log.close();
    let segment = segments_of(dir.path(), &id).remove(0);
    let (mut altered, mut dropped, mut inserted) = (None, None, None);
    rewrite_segment(&segment, |events| {
        events.sort_by_key(|event| event.seq);
        let victim = &mut events[10];
        victim.json = Bytes::from(String::from_utf8(victim.json.to_vec()).unwrap().replace("GetObject", "PutObject"));
        altered = Some((victim.seq, victim.event_id().to_owned()));
        let gone = events.remove(20);
        dropped = Some(gone.seq);
        // A forged event at a position that belongs to another stream, inside the range.
        let mut forged = events[30].clone();
        forged.seq += 1;
        forged.fields = forged.fields.with_identity("forged", forged.account_id(), forged.region());
        inserted = Some(forged.seq);
        // And one past the end of the log, where no tree would ever take it in.
        let mut beyond = forged.clone();
        beyond.seq = 1_000_000;
        beyond.fields = beyond.fields.with_identity("beyond", beyond.account_id(), beyond.region());
        events.push(forged);
        events.push(beyond);
    });

    let verification = verify_store(dir.path(), &sizes).unwrap();
    let findings: Vec<&Finding> = verification.findings().map(|(_, finding)| finding).collect();
    let (altered_seq, altered_id) = altered.unwrap();
    assert!(findings.iter().any(
        |finding| matches!(finding, Finding::Altered { seq, event_id, .. } if *seq == altered_seq && *event_id == altered_id)
    ));
    assert!(findings.iter().any(|finding| matches!(finding, Finding::Dropped { seq, .. } if Some(*seq) == dropped)));
    assert!(findings.iter().any(
        |finding| matches!(finding, Finding::Inserted { seq, event_id, .. } if Some(*seq) == inserted && event_id == "forged")
    ));
    assert!(
        findings.iter().any(
            |finding| matches!(finding, Finding::Inserted { seq: 1_000_000, event_id, .. } if event_id == "beyond")
        )
    );
    assert_eq!(findings.len(), 4, "{findings:?}");
    let tree = verification.trees.iter().find(|tree| tree.id == id).unwrap();
    assert_eq!(sizes[&id], vec![head.size]);
    assert_ne!(tree.rebuilt_roots.get(&head.size), Some(&head.root), "the rebuilt root shows it too");
}

#[test]
fn verification_tells_retention_from_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = {
        // Old events, sealed on their own, then newer ones: retention drops only the old.
        let mut sizes = sealed_store(dir.path(), (0..300).map(|id| event(id, 1_000)).collect());
        let more = sealed_store(dir.path(), (300..600).map(|id| event(id, 9_000)).collect());
        sizes.extend(more);
        sizes
    };
    let log = EventLog::open(dir.path(), log_options()).unwrap();
    let expired = log.expire(5_000).unwrap();
    assert!(!expired.is_empty());
    log.close();
    let verification = verify_store(dir.path(), &sizes).unwrap();
    assert_eq!(verification.findings().count(), 0, "{:?}", verification.findings().collect::<Vec<_>>());
    assert_eq!(verification.trees.iter().map(|tree| tree.expired).sum::<u64>(), 300);
    assert_eq!(verification.trees.iter().map(|tree| tree.matched).sum::<u64>(), 300);

    // An event deleted from a newer segment is still named, though older ones expired.
    let id = TreeId::new(ACCOUNTS[1], REGIONS[1]);
    let segment = segments_of(dir.path(), &id).remove(0);
    let mut removed = 0;
    rewrite_segment(&segment, |events| removed = events.remove(1).seq);
    let verification = verify_store(dir.path(), &sizes).unwrap();
    let findings: Vec<&Finding> = verification.findings().map(|(_, finding)| finding).collect();
    assert!(matches!(findings.as_slice(), [Finding::Dropped { seq, .. }] if *seq == removed), "{findings:?}");
}

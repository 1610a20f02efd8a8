//! Which sealed segments to merge, and when.
//!
//! The sealer writes one segment per (account, Region, date) of each frozen table: a few
//! seconds of ingest, 10,000–40,000 events of a busy partition and fewer of a quiet one. A
//! larger segment stores each event in fewer bytes (rows of one caller fill more of each
//! compressed page), and a lookup or a catch-up read opens fewer of them. So the log's
//! compactor ([`crate::segment::merge_segments`]) merges a partition's segments in the
//! background, by two rules:
//!
//! - **Tiers.** Segments are put in tiers by size, each [`FANOUT`] times the one below,
//!   from [`TIER_BASE`] events. Once a tier holds [`FANOUT`] segments, the oldest of them
//!   are merged (as many as fit in [`MAX_MERGED_EVENTS`]). An event is rewritten about once
//!   per tier it climbs: about three times on its way to the largest size.
//! - **Settled.** A partition that has had no new segment for the log's settle time (a day
//!   that is over, a backfill that finished) has its segments merged smallest first, as
//!   many as fit, until no two fit together; then each segment still written fast is
//!   written again, alone, small.
//!
//! Either way a merge leaves out a segment written small that outweighs all the others of
//! it more than `FANOUT - 1` times: rewriting it would cost far more than it saves. In a
//! tier merge that holds for any segment; a settled partition's segment written fast is
//! rewritten anyway, so the others come along.
//!
//! A merge whose segment will be merged again is written fast, at the sealer's zstd level;
//! one whose segment stays ([`is_last_merge`]) is written small, at a high level, as an LSM
//! tree compresses its bottom level hardest. zstd's match search at the high level was most
//! of a merge's CPU (59% of the compactor's samples during ingest), and an event climbs
//! about three tiers: a burst of ingest now pays that search once per event. Over a long
//! ingest the total is no lower, because a compactor this fast keeps up and merges each
//! tier as soon as it fills (ARCHITECTURE.md, "Compaction"). A tier merge's segment whose
//! partition settles before it climbs further is the one a settled partition writes again
//! alone: on a 2M-event store such segments held a fifth of the events, at 161–178 B/event
//! (BENCHMARKS.md).
//!
//! Nothing merges past [`MAX_MERGED_EVENTS`]: a segment's index is loaded whole when a
//! lookup needs it (about 27 bytes an event), and a larger one would cost more to load than
//! its share of lookups saves.

/// The most events a merged segment holds.
pub(crate) const MAX_MERGED_EVENTS: u64 = 1 << 19;
/// Segments below this many events are all in the lowest tier.
pub(crate) const TIER_BASE: u64 = 1 << 14;
/// How many segments of one tier make a merge, and how much larger each tier's are.
pub(crate) const FANOUT: usize = 4;

/// What the policy needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSize {
    pub events: u64,
    /// Orders segments by age: the first log position.
    pub min_seq: u64,
    /// Whether it was written small, by a merge that was its last ([`is_last_merge`]).
    pub written_small: bool,
}

/// The positions in `segments` (one partition's) of the segments to merge next, if any.
pub(crate) fn pick(segments: &[SegmentSize], settled: bool) -> Option<Vec<usize>> {
    let mergeable: Vec<usize> = (0..segments.len()).filter(|&at| segments[at].events < MAX_MERGED_EVENTS).collect();
    let mut tiers: Vec<Vec<usize>> = Vec::new();
    for &at in &mergeable {
        let tier = tier_of(segments[at].events);
        if tiers.len() <= tier {
            tiers.resize_with(tier + 1, Vec::new);
        }
        tiers[tier].push(at);
    }
    for mut members in tiers {
        if members.len() < FANOUT {
            continue;
        }
        members.sort_by_key(|&at| segments[at].min_seq);
        if let Some(picked) = fill(segments, members, false) {
            return Some(picked);
        }
    }
    if !settled {
        return None;
    }
    let mut smallest_first = mergeable;
    smallest_first.sort_by_key(|&at| (segments[at].events, segments[at].min_seq));
    if let Some(picked) = fill(segments, smallest_first.clone(), true) {
        return Some(picked);
    }
    smallest_first.into_iter().find(|&at| !segments[at].written_small).map(|at| vec![at])
}

/// The longest prefix of `candidates` that fits in one merged segment, less its largest
/// segments while one of them outweighs the rest more than `FANOUT - 1` times, if at least
/// two are left. Merging a few events into a much larger segment would rewrite the large one
/// for next to nothing: each stop of the server seals a small segment per partition, and
/// they wait for more of their size instead (a settled partition's are meanwhile written
/// small alone, which costs only their own few events). In a `settled` partition a large
/// segment written fast stays in: it is written again either way.
fn fill(segments: &[SegmentSize], candidates: Vec<usize>, settled: bool) -> Option<Vec<usize>> {
    let mut total = 0;
    let mut picked: Vec<usize> = candidates
        .into_iter()
        .take_while(|&at| {
            total += segments[at].events;
            total <= MAX_MERGED_EVENTS
        })
        .collect();
    while let Some(largest) = (0..picked.len()).max_by_key(|&position| segments[picked[position]].events) {
        let SegmentSize { events, written_small, .. } = segments[picked[largest]];
        let rest: u64 = picked.iter().map(|&at| segments[at].events).sum::<u64>() - events;
        if events <= rest.saturating_mul(FANOUT as u64 - 1) || (settled && !written_small) {
            break;
        }
        picked.remove(largest);
    }
    (picked.len() >= 2).then_some(picked)
}

/// Whether a merge writes a segment that no tier merge picks again: a settled partition's,
/// or one of more than half the largest size, since no two segments of its tier fit in one
/// merge.
pub(crate) fn is_last_merge(merged_events: u64, settled: bool) -> bool {
    settled || merged_events > MAX_MERGED_EVENTS / 2
}

/// 0 below `TIER_BASE * FANOUT` events, 1 below `TIER_BASE * FANOUT²`, and so on.
fn tier_of(events: u64) -> usize {
    (events / TIER_BASE).max(1).ilog(FANOUT as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segments written fast, as the sealer writes them, oldest first.
    fn sizes(events: &[u64]) -> Vec<SegmentSize> {
        events
            .iter()
            .enumerate()
            .map(|(at, &events)| SegmentSize { events, min_seq: at as u64 * 10, written_small: false })
            .collect()
    }

    /// [`sizes`], with the segments at `small` written small.
    fn written_small(events: &[u64], small: &[usize]) -> Vec<SegmentSize> {
        let mut segments = sizes(events);
        for &at in small {
            segments[at].written_small = true;
        }
        segments
    }

    #[test]
    fn a_full_tier_merges_its_oldest_segments() {
        let segments = sizes(&[20_000, 30_000, 300_000, 15_000, 40_000, 12_000]);
        assert_eq!(pick(&segments, false), Some(vec![0, 1, 3, 4, 5]));
        assert_eq!(pick(&segments[..4], false), None, "three small segments wait for a fourth");
    }

    #[test]
    fn a_merge_stops_at_the_largest_size() {
        let segments = sizes(&[200_000, 200_000, 200_000, 200_000]);
        assert_eq!(pick(&segments, false), Some(vec![0, 1]));
        let full = sizes(&[MAX_MERGED_EVENTS, MAX_MERGED_EVENTS, 1, 1]);
        assert_eq!(pick(&full, false), None, "full segments never merge again");
        assert_eq!(pick(&full, true), Some(vec![2, 3]));
    }

    #[test]
    fn a_settled_partition_merges_what_fits_smallest_first() {
        let segments = written_small(&[400_000, 30_000, 100_000, 5_000], &[0]);
        assert_eq!(pick(&segments, false), None);
        assert_eq!(pick(&segments, true), Some(vec![3, 1, 2]));
        let apart = written_small(&[400_000, 300_000], &[0, 1]);
        assert_eq!(pick(&apart, true), None, "no two fit together");
        assert_eq!(pick(&written_small(&[7], &[0]), true), None);
    }

    #[test]
    fn a_settled_partition_writes_each_fast_segment_small_once() {
        assert_eq!(pick(&sizes(&[7]), true), Some(vec![0]), "alone, if nothing fits with it");
        assert_eq!(pick(&sizes(&[7]), false), None, "not before the partition settles");
        assert_eq!(pick(&written_small(&[400_000, 300_000], &[0]), true), Some(vec![1]));
        assert_eq!(pick(&written_small(&[400_000, 300_000], &[1]), true), Some(vec![0]));
        // A small segment written fast goes alone when the others outweigh it.
        assert_eq!(pick(&written_small(&[300_000, 5_000], &[0]), true), Some(vec![1]));
    }

    #[test]
    fn a_small_segment_is_not_merged_into_a_much_larger_one() {
        assert_eq!(pick(&written_small(&[300_000, 5_000, 6_000, 7_000], &[0]), true), Some(vec![1, 2, 3]));
        assert_eq!(pick(&sizes(&[60_000, 1_000, 2_000, 3_000]), false), Some(vec![1, 2, 3]));
        assert_eq!(pick(&written_small(&[30_000, 20_000, 25_000], &[0, 1, 2]), true), Some(vec![1, 2, 0]));
    }

    #[test]
    fn a_settled_partitions_large_segment_written_fast_takes_the_small_ones_along() {
        // It is written again either way: the small ones cost little more.
        assert_eq!(pick(&sizes(&[300_000, 5_000]), true), Some(vec![1, 0]));
        assert_eq!(pick(&sizes(&[300_000, 5_000, 6_000, 7_000]), true), Some(vec![1, 2, 3, 0]));
        // A segment already written small that outweighs the others is still left out.
        assert_eq!(pick(&written_small(&[300_000, 60_000, 5_000], &[0]), true), Some(vec![2, 1]));
    }

    #[test]
    fn only_segments_no_tier_merge_picks_again_are_written_small() {
        let half = MAX_MERGED_EVENTS / 2;
        assert!(!is_last_merge(half, false));
        assert!(is_last_merge(half + 1, false));
        assert!(is_last_merge(1, true));
        assert_eq!(pick(&sizes(&[half, half, half, half]), false), Some(vec![0, 1]));
        assert_eq!(pick(&sizes(&[half, half + 1, half + 1, half + 1]), false), None);
    }

    #[test]
    fn tiers_grow_by_the_fanout() {
        assert_eq!(tier_of(0), 0);
        assert_eq!(tier_of(TIER_BASE * 4 - 1), 0);
        assert_eq!(tier_of(TIER_BASE * 4), 1);
        assert_eq!(tier_of(TIER_BASE * 16), 2);
        assert_eq!(tier_of(u64::MAX), 24);
    }

    proptest::proptest! {
        /// Repeating the policy, each time merging what it picks, always ends, never makes
        /// a segment past the largest size, and keeps every event.
        #[test]
        fn merging_what_is_picked_ends(events in proptest::collection::vec(1u64..300_000, 0..40), settled: bool) {
            let mut segments = sizes(&events);
            let total: u64 = events.iter().sum();
            let mut merges = 0;
            while let Some(picked) = pick(&segments, settled) {
                merges += 1;
                // A merge leaves fewer segments, or writes a segment small.
                proptest::prop_assert!(merges <= 2 * events.len(), "{merges} merges of {} segments", events.len());
                proptest::prop_assert!(
                    picked.len() >= 2 || !segments[picked[0]].written_small,
                    "a segment is written alone only to write it small"
                );
                let events: u64 = picked.iter().map(|&at| segments[at].events).sum();
                let merged = SegmentSize {
                    events,
                    min_seq: picked.iter().map(|&at| segments[at].min_seq).min().unwrap_or(0),
                    written_small: is_last_merge(events, settled),
                };
                proptest::prop_assert!(merged.events <= MAX_MERGED_EVENTS);
                proptest::prop_assert!(
                    settled || picked.iter().all(|&at| !segments[at].written_small),
                    "a tier merge never rewrites a segment a last merge wrote"
                );
                let mut kept: Vec<SegmentSize> = (0..segments.len())
                    .filter(|at| !picked.contains(at))
                    .map(|at| segments[at])
                    .collect();
                kept.push(merged);
                segments = kept;
            }
            proptest::prop_assert_eq!(segments.iter().map(|segment| segment.events).sum::<u64>(), total);
            proptest::prop_assert!(
                !settled || segments.iter().all(|segment| segment.written_small || segment.events >= MAX_MERGED_EVENTS),
                "a settled partition ends with every segment written small"
            );
        }
    }
}

//! The block map of a block-mode cache entry (ARCHITECTURE §10): which byte ranges of a large
//! remote file are present in its sparse cache file, as sorted, non-overlapping, non-adjacent
//! half-open intervals `[start, end)`. Presence is a binary search; inserting merges with every
//! interval it overlaps or touches; the missing parts of a read come out already coalesced (two
//! missing ranges are always separated by a present one), so each is one `Range` request.

/// Reads are rounded out to blocks of this size before missing ranges are computed.
pub const BLOCK: u64 = 1 << 20;

/// Past this many intervals the entry is promoted to a full download (fragmentation guard).
pub const PROMOTE_AFTER: usize = 1000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockMapError {
    #[error("block map blob of {0} bytes is not a list of u64 pairs")]
    Length(usize),
    #[error("block map interval {index} [{start}, {end}) is empty, unsorted, overlapping or adjacent")]
    Order { index: usize, start: u64, end: u64 },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockMap {
    intervals: Vec<(u64, u64)>,
}

impl BlockMap {
    pub fn new() -> BlockMap {
        BlockMap::default()
    }

    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.intervals
    }

    /// Bytes present.
    pub fn present_bytes(&self) -> u64 {
        self.intervals.iter().map(|(s, e)| e - s).sum()
    }

    /// The index of the first interval that ends after `offset` (the only one that can hold it).
    fn first_ending_after(&self, offset: u64) -> usize {
        self.intervals.partition_point(|&(_, end)| end <= offset)
    }

    /// Whether every byte of `[start, end)` is present (an empty range always is).
    pub fn contains(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        match self.intervals.get(self.first_ending_after(start)) {
            Some(&(s, e)) => s <= start && end <= e,
            None => false,
        }
    }

    /// The missing parts of `[start, end)`, in order; each is bounded by present data or by the
    /// range's ends, so adjacent missing bytes are always one range.
    pub fn missing(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = start;
        for &(s, e) in &self.intervals[self.first_ending_after(start)..] {
            if at >= end || s >= end {
                break;
            }
            if s > at {
                out.push((at, s));
            }
            at = at.max(e);
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Marks `[start, end)` present, merging it with every interval it overlaps or touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Intervals that end before `start` (not touching) stay; so do those that start after `end`.
        let lo = self.intervals.partition_point(|&(_, e)| e < start);
        let hi = self.intervals.partition_point(|&(s, _)| s <= end);
        let (mut new_start, mut new_end) = (start, end);
        if lo < hi {
            new_start = new_start.min(self.intervals[lo].0);
            new_end = new_end.max(self.intervals[hi - 1].1);
        }
        self.intervals.splice(lo..hi, [(new_start, new_end)]);
    }

    /// Whether `[0, size)` is present (the entry can become a full one).
    pub fn is_complete(&self, size: u64) -> bool {
        self.contains(0, size)
    }

    /// Too fragmented: one more interval would take the map past [`PROMOTE_AFTER`], so the
    /// next miss fetches the whole file instead.
    pub fn should_promote(&self) -> bool {
        self.intervals.len() >= PROMOTE_AFTER
    }

    /// The stored form: little-endian `u64` pairs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.intervals.len() * 16);
        for &(s, e) in &self.intervals {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&e.to_le_bytes());
        }
        out
    }

    /// Reads the stored form, refusing anything that is not sorted, non-overlapping and
    /// non-adjacent (a corrupt map must not make absent bytes look present).
    pub fn from_bytes(bytes: &[u8]) -> Result<BlockMap, BlockMapError> {
        if bytes.len() % 16 != 0 {
            return Err(BlockMapError::Length(bytes.len()));
        }
        let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        let mut intervals: Vec<(u64, u64)> = Vec::with_capacity(bytes.len() / 16);
        for (index, pair) in bytes.chunks_exact(16).enumerate() {
            let (start, end) = (word(&pair[..8]), word(&pair[8..]));
            let after_previous = intervals.last().is_none_or(|&(_, prev_end)| start > prev_end);
            if start >= end || !after_previous {
                return Err(BlockMapError::Order { index, start, end });
            }
            intervals.push((start, end));
        }
        Ok(BlockMap { intervals })
    }
}

/// `[offset, offset + len)` rounded out to whole blocks and clipped to the file's `size`.
pub fn block_aligned(offset: u64, len: u64, size: u64) -> (u64, u64) {
    let start = (offset / BLOCK) * BLOCK;
    let end = offset.saturating_add(len).div_ceil(BLOCK).saturating_mul(BLOCK).min(size);
    (start.min(size), end)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn map(intervals: &[(u64, u64)]) -> BlockMap {
        let mut m = BlockMap::new();
        for &(s, e) in intervals {
            m.insert(s, e);
        }
        m
    }

    #[test]
    fn insert_merges_overlapping_and_adjacent_intervals() {
        let mut m = map(&[(10, 20), (30, 40)]);
        assert_eq!(m.intervals(), [(10, 20), (30, 40)]);
        m.insert(20, 25);
        assert_eq!(m.intervals(), [(10, 25), (30, 40)], "adjacent on the left");
        m.insert(28, 30);
        assert_eq!(m.intervals(), [(10, 25), (28, 40)], "adjacent on the right");
        m.insert(0, 5);
        m.insert(50, 60);
        assert_eq!(m.intervals(), [(0, 5), (10, 25), (28, 40), (50, 60)]);
        m.insert(3, 55);
        assert_eq!(m.intervals(), [(0, 60)], "one insert swallowing several");
        m.insert(7, 7);
        assert_eq!(m.intervals(), [(0, 60)], "empty ranges change nothing");
        assert_eq!(m.present_bytes(), 60);
    }

    #[test]
    fn presence_and_missing_ranges() {
        let m = map(&[(10, 20), (30, 40)]);
        assert!(m.contains(10, 20) && m.contains(12, 18) && m.contains(5, 5));
        assert!(!m.contains(5, 15) && !m.contains(15, 35) && !m.contains(40, 41) && !m.contains(0, 1));
        assert_eq!(m.missing(0, 50), [(0, 10), (20, 30), (40, 50)]);
        assert_eq!(m.missing(12, 18), []);
        assert_eq!(m.missing(15, 35), [(20, 30)]);
        assert_eq!(m.missing(20, 30), [(20, 30)], "a gap exactly");
        assert_eq!(BlockMap::new().missing(3, 9), [(3, 9)]);
        assert!(map(&[(0, 100)]).is_complete(100) && !m.is_complete(40));
    }

    #[test]
    fn the_stored_form_round_trips_and_corruption_is_refused() {
        let m = map(&[(0, 4096), (1 << 20, 3 << 20)]);
        assert_eq!(BlockMap::from_bytes(&m.to_bytes()).unwrap(), m);
        assert_eq!(BlockMap::from_bytes(&[]).unwrap(), BlockMap::new());
        assert_eq!(BlockMap::from_bytes(&[0; 15]), Err(BlockMapError::Length(15)));
        let bad = |pairs: &[(u64, u64)]| {
            let bytes: Vec<u8> =
                pairs.iter().flat_map(|(s, e)| s.to_le_bytes().into_iter().chain(e.to_le_bytes())).collect();
            BlockMap::from_bytes(&bytes).is_err()
        };
        assert!(bad(&[(5, 5)]), "empty");
        assert!(bad(&[(10, 20), (0, 5)]), "unsorted");
        assert!(bad(&[(0, 10), (5, 20)]), "overlapping");
        assert!(bad(&[(0, 10), (10, 20)]), "adjacent (should have been merged)");
    }

    #[test]
    fn reads_round_out_to_blocks_within_the_file() {
        assert_eq!(block_aligned(0, 1, 10 * BLOCK), (0, BLOCK));
        assert_eq!(block_aligned(BLOCK + 5, BLOCK, 10 * BLOCK), (BLOCK, 3 * BLOCK));
        assert_eq!(block_aligned(9 * BLOCK + 7, 100, 9 * BLOCK + 50), (9 * BLOCK, 9 * BLOCK + 50), "clipped");
        assert_eq!(block_aligned(2 * BLOCK, 0, 10 * BLOCK), (2 * BLOCK, 2 * BLOCK));
    }

    #[test]
    fn many_scattered_blocks_ask_for_promotion() {
        let mut m = BlockMap::new();
        for i in 0..PROMOTE_AFTER as u64 - 1 {
            m.insert(i * 2 * BLOCK, i * 2 * BLOCK + BLOCK);
        }
        assert!(!m.should_promote(), "999 intervals: one more is still fine");
        m.insert(1 << 50, (1 << 50) + 1);
        assert!(m.should_promote(), "1,000: the next one would be past the limit");
        assert!(!map(&[(0, 10)]).should_promote());
    }

    /// The model: one bool per byte of a small file.
    fn bitmap_of(ops: &[(u64, u64)], size: usize) -> Vec<bool> {
        let mut bits = vec![false; size];
        for &(s, e) in ops {
            for b in bits.iter_mut().take(e as usize).skip(s as usize) {
                *b = true;
            }
        }
        bits
    }

    proptest! {
        #[test]
        fn matches_a_bitmap_model(
            ops in proptest::collection::vec((0u64..200, 0u64..40), 0..40),
            query in (0u64..200, 0u64..60),
        ) {
            let ops: Vec<(u64, u64)> = ops.into_iter().map(|(s, l)| (s, (s + l).min(200))).collect();
            let m = map(&ops);
            let bits = bitmap_of(&ops, 200);
            // Invariant: sorted, non-empty, non-overlapping, non-adjacent.
            for w in m.intervals().windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
            prop_assert!(m.intervals().iter().all(|(s, e)| s < e));
            prop_assert_eq!(m.present_bytes(), bits.iter().filter(|b| **b).count() as u64);
            prop_assert_eq!(BlockMap::from_bytes(&m.to_bytes()).unwrap(), m.clone());

            let (qs, qe) = (query.0, (query.0 + query.1).min(200));
            let want_contains = (qs..qe).all(|i| bits[i as usize]);
            prop_assert_eq!(m.contains(qs, qe), want_contains);
            // Missing ranges: exactly the absent bytes of the query, maximal runs, in order.
            let missing = m.missing(qs, qe);
            let mut covered = [false; 200];
            for w in missing.windows(2) {
                prop_assert!(w[0].1 < w[1].0, "coalesced: {:?}", missing);
            }
            for &(s, e) in &missing {
                prop_assert!(qs <= s && s < e && e <= qe);
                for i in s..e {
                    covered[i as usize] = true;
                }
            }
            for i in qs..qe {
                prop_assert_eq!(covered[i as usize], !bits[i as usize], "byte {}", i);
            }
            // Filling what is missing completes the range.
            let mut filled = m.clone();
            for (s, e) in missing {
                filled.insert(s, e);
            }
            prop_assert!(filled.contains(qs, qe));
        }
    }
}

//! Longest-prefix lookup over one plan's rates: one open-addressing hash
//! table keyed by (prefix length, prefix digits as a number).
//!
//! Built once per tariff load and read-only afterwards. A lookup computes the
//! number's leading values for every prefix length the plan uses and probes
//! each one. The probes do not depend on each other, so the CPU overlaps
//! their cache misses; a digit trie instead chains one dependent miss per
//! level, which made a 100,000-prefix deck twice as slow as a 1,000-prefix
//! one. Cost is bounded by the 15 digits of E.164, not by the deck, and a
//! lookup never allocates. Effective dates and bands are checked by the
//! caller, not here.

use cdrate_core::number::E164_MAX_DIGITS;

/// One table slot: `key == 0` is empty, otherwise `(len + 1) << 56 | value`
/// and the range of items with that prefix.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u64,
    first: u32,
    len: u32,
}

/// Prefixes mapped to contiguous ranges of items.
#[derive(Debug, Clone)]
pub struct PrefixIndex {
    slots: Vec<Slot>,
    mask: usize,
    /// Bit `l` is set when some prefix has `l` digits.
    lengths: u16,
    prefixes: usize,
}

/// Why a prefix could not be indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixIndexError {
    NotDigits,
    TooLong,
    /// Equal prefixes were not adjacent in the input.
    NotSorted,
    /// More entries than the index can address.
    TooLarge,
}

fn key(len: usize, value: u64) -> u64 {
    ((len as u64 + 1) << 56) | value
}

/// Fibonacci hashing: spreads the structured keys over the table.
fn home(key: u64, mask: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl PrefixIndex {
    /// Builds the index from prefixes already sorted so that equal prefixes
    /// are adjacent (the caller sorts its items the same way, so entry `i`
    /// here is item `i` there). Returns an error for a prefix with a
    /// non-digit or longer than E.164 allows.
    pub fn build<'a>(sorted_prefixes: impl IntoIterator<Item = &'a str>) -> Result<PrefixIndex, PrefixIndexError> {
        let mut ranges: Vec<(u64, u32, u32)> = Vec::new();
        let mut lengths = 0u16;
        for (item, prefix) in sorted_prefixes.into_iter().enumerate() {
            if prefix.len() > E164_MAX_DIGITS {
                return Err(PrefixIndexError::TooLong);
            }
            if !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PrefixIndexError::NotDigits);
            }
            let item = u32::try_from(item).map_err(|_| PrefixIndexError::TooLarge)?;
            let value = prefix.bytes().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
            let k = key(prefix.len(), value);
            lengths |= 1 << prefix.len();
            match ranges.last_mut() {
                Some((last, first, len)) if *last == k && *first + *len == item => *len += 1,
                _ => ranges.push((k, item, 1)),
            }
        }
        // At most half full keeps probe sequences short.
        let capacity = (ranges.len() * 2).next_power_of_two().max(16);
        let mask = capacity - 1;
        let mut slots = vec![Slot::default(); capacity];
        for &(k, first, len) in &ranges {
            let mut i = home(k, mask);
            while slots[i].key != 0 {
                if slots[i].key == k {
                    return Err(PrefixIndexError::NotSorted);
                }
                i = (i + 1) & mask;
            }
            slots[i] = Slot { key: k, first, len };
        }
        Ok(PrefixIndex {
            slots,
            mask,
            lengths,
            prefixes: ranges.len(),
        })
    }

    /// Number of distinct prefixes indexed.
    pub fn prefix_count(&self) -> usize {
        self.prefixes
    }

    /// The item ranges of every indexed prefix of `digits`, longest first,
    /// probed lazily: the caller usually stops at the first range. A
    /// non-digit byte ends the number.
    pub fn matches<'i>(&'i self, digits: &str) -> Matches<'i> {
        let mut values = [0u64; E164_MAX_DIGITS + 1];
        let mut len = 0;
        for b in digits.bytes().take(E164_MAX_DIGITS) {
            if !b.is_ascii_digit() {
                break;
            }
            values[len + 1] = values[len] * 10 + u64::from(b - b'0');
            len += 1;
        }
        Matches {
            index: self,
            values,
            // Lengths still to probe: those the plan uses, up to the number's.
            pending: self.lengths & (((1u32 << (len + 1)) - 1) as u16),
        }
    }

    fn find(&self, k: u64) -> Option<(u32, u32)> {
        let mut i = home(k, self.mask);
        loop {
            let slot = self.slots.get(i)?;
            if slot.key == k {
                return Some((slot.first, slot.len));
            }
            if slot.key == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Matched item ranges along one number, longest prefix first. Lives on
/// the stack; each `next` probes the table until it finds a range.
#[derive(Debug, Clone)]
pub struct Matches<'i> {
    index: &'i PrefixIndex,
    values: [u64; E164_MAX_DIGITS + 1],
    pending: u16,
}

impl Iterator for Matches<'_> {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pending != 0 {
            let len = (15 - self.pending.leading_zeros()) as usize;
            self.pending &= !(1 << len);
            if let Some((first, n)) = self.index.find(key(len, self.values[len])) {
                return Some(first as usize..(first + n) as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn longest_first_with_catch_all() {
        let prefixes = ["", "1", "1", "1212", "44", "447"];
        let idx = PrefixIndex::build(prefixes).unwrap();
        assert_eq!(idx.prefix_count(), 5);
        let got: Vec<_> = idx.matches("12125551234").collect();
        assert_eq!(got, [3..4, 1..3, 0..1]);
        let got: Vec<_> = idx.matches("447911").collect();
        assert_eq!(got, [5..6, 4..5, 0..1]);
        let got: Vec<_> = idx.matches("33").collect();
        assert_eq!(got, vec![0..1usize]);
    }

    #[test]
    fn rejects_bad_prefixes() {
        assert_eq!(PrefixIndex::build(["12a"]).unwrap_err(), PrefixIndexError::NotDigits);
        assert_eq!(
            PrefixIndex::build(["1234567890123456"]).unwrap_err(),
            PrefixIndexError::TooLong
        );
        assert_eq!(
            PrefixIndex::build(["1", "2", "1"]).unwrap_err(),
            PrefixIndexError::NotSorted
        );
    }

    proptest! {
        // The trie agrees with a naive scan over every prefix.
        #[test]
        fn agrees_with_linear_scan(
            mut prefixes in proptest::collection::vec("[0-9]{0,5}", 0..40),
            number in "[0-9]{1,15}",
        ) {
            prefixes.sort();
            let idx = PrefixIndex::build(prefixes.iter().map(String::as_str)).unwrap();
            let got: Vec<_> = idx.matches(&number).flat_map(|r| r.collect::<Vec<_>>()).collect();
            let mut want: Vec<_> = (0..prefixes.len()).filter(|&i| number.starts_with(&prefixes[i])).collect();
            want.sort_by_key(|&i| std::cmp::Reverse((prefixes[i].len(), std::cmp::Reverse(i))));
            prop_assert_eq!(got, want);
        }
    }
}

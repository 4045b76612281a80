//! Longest-prefix lookup over one plan's rates: a flat digit trie.
//!
//! Built once per tariff load and read-only afterwards. A lookup walks at most
//! one node per digit of the number (15 for E.164), so its cost does not grow
//! with the size of the deck, and it never allocates: the matched path is
//! kept in a fixed array on the stack. Effective dates and bands are checked
//! by the caller, not here.

use cdrate_core::number::E164_MAX_DIGITS;

const NO_CHILD: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    children: [u32; 10],
    /// Range of entries (into the caller's sorted item list) ending here.
    first: u32,
    len: u32,
}

impl Node {
    fn new() -> Node {
        Node {
            children: [NO_CHILD; 10],
            first: 0,
            len: 0,
        }
    }
}

/// A digit trie mapping prefixes to contiguous ranges of items.
#[derive(Debug, Clone)]
pub struct PrefixIndex {
    nodes: Vec<Node>,
    prefixes: usize,
}

/// Why a prefix could not be indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixIndexError {
    NotDigits,
    TooLong,
    /// Equal prefixes were not adjacent in the input.
    NotSorted,
    /// More entries or nodes than a `u32` can address.
    TooLarge,
}

impl PrefixIndex {
    /// Builds the index from prefixes already sorted so that equal prefixes
    /// are adjacent (the caller sorts its items the same way, so entry `i`
    /// here is item `i` there). Returns an error for a prefix with a
    /// non-digit or longer than E.164 allows.
    pub fn build<'a>(sorted_prefixes: impl IntoIterator<Item = &'a str>) -> Result<PrefixIndex, PrefixIndexError> {
        let mut nodes = vec![Node::new()];
        let mut prefixes = 0;
        for (item, prefix) in sorted_prefixes.into_iter().enumerate() {
            if prefix.len() > E164_MAX_DIGITS {
                return Err(PrefixIndexError::TooLong);
            }
            let item = u32::try_from(item).map_err(|_| PrefixIndexError::TooLarge)?;
            let mut at = 0usize;
            for b in prefix.bytes() {
                let digit = usize::from(b.wrapping_sub(b'0'));
                if digit > 9 {
                    return Err(PrefixIndexError::NotDigits);
                }
                let next = nodes[at].children[digit];
                at = if next == NO_CHILD {
                    let id = u32::try_from(nodes.len()).map_err(|_| PrefixIndexError::TooLarge)?;
                    nodes.push(Node::new());
                    nodes[at].children[digit] = id;
                    id as usize
                } else {
                    next as usize
                };
            }
            let node = &mut nodes[at];
            if node.len == 0 {
                node.first = item;
                prefixes += 1;
            } else if node.first + node.len != item {
                // Equal prefixes must be adjacent for the range to be contiguous.
                return Err(PrefixIndexError::NotSorted);
            }
            node.len += 1;
        }
        nodes.shrink_to_fit();
        Ok(PrefixIndex { nodes, prefixes })
    }

    /// Number of distinct prefixes indexed.
    pub fn prefix_count(&self) -> usize {
        self.prefixes
    }

    /// The item ranges of every indexed prefix of `digits`, longest first.
    /// Non-digit bytes end the walk.
    pub fn matches(&self, digits: &str) -> Matches {
        let mut path = Matches {
            hits: [(0, 0); E164_MAX_DIGITS + 1],
            len: 0,
        };
        let mut at = 0usize;
        let push = |node: &Node, path: &mut Matches| {
            if node.len > 0 {
                path.hits[path.len] = (node.first, node.len);
                path.len += 1;
            }
        };
        push(&self.nodes[0], &mut path);
        for b in digits.bytes().take(E164_MAX_DIGITS) {
            let digit = usize::from(b.wrapping_sub(b'0'));
            let Some(&next) = self.nodes[at].children.get(digit) else {
                break;
            };
            if next == NO_CHILD {
                break;
            }
            at = next as usize;
            push(&self.nodes[at], &mut path);
        }
        path
    }
}

/// Matched item ranges along one number's path, iterated longest prefix
/// first. Lives on the stack.
#[derive(Debug, Clone)]
pub struct Matches {
    hits: [(u32, u32); E164_MAX_DIGITS + 1],
    len: usize,
}

impl Iterator for Matches {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        self.len = self.len.checked_sub(1)?;
        let (first, len) = self.hits[self.len];
        Some(first as usize..(first + len) as usize)
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
        assert_eq!(got, [0..1]);
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

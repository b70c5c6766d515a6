//! Keeping the best few: the page's top hits and the floor a walk must beat.

use super::*;

/// Orders hits best first: higher score, then lower id.
pub(super) fn best_first(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id))
}

/// The best `limit` items so far, and one more to tell whether a next page exists; an
/// item's order makes the worse the greater.
pub(super) struct Kept<T> {
    pub(super) limit: usize,
    /// Up to `limit + 1` items, the worst of them on top.
    pub(super) heap: BinaryHeap<T>,
}

impl<T: Ord> Kept<T> {
    pub(super) fn new(limit: usize) -> Self {
        Kept {
            limit,
            heap: BinaryHeap::with_capacity(limit.saturating_add(1).min(1_024)),
        }
    }

    pub(super) fn push(&mut self, item: T) {
        // Full, and no better than the worst: it would be pushed only to be dropped.
        if self.heap.len() > self.limit && self.heap.peek().is_some_and(|worst| item >= *worst) {
            return;
        }
        self.heap.push(item);
        if self.heap.len() > self.limit.saturating_add(1) {
            self.heap.pop();
        }
    }

    /// The worst item kept, once the page and the one after it are.
    pub(super) fn worst_of_full(&self) -> Option<&T> {
        self.heap.peek().filter(|_| self.heap.len() > self.limit)
    }
}

/// The best hits so far (see [`Kept`]).
pub(super) type TopHits = Kept<Ranked>;

/// A hit ordered so that the worse is the greater: a max-heap keeps the worst on top.
pub(super) struct Ranked(pub(super) Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        best_first(&self.0, &other.0) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        best_first(&self.0, &other.0)
    }
}

impl TopHits {
    /// The scores of the hits kept.
    pub(super) fn scores(&self) -> impl Iterator<Item = f64> {
        self.heap.iter().map(|ranked| ranked.0.score)
    }

    pub(super) fn into_page(self) -> Page {
        let mut hits: Vec<Hit> = self.heap.into_iter().map(|ranked| ranked.0).collect();
        hits.sort_unstable_by(best_first);
        let more = hits.len() > self.limit;
        hits.truncate(self.limit);
        let next = more.then(|| {
            let last = hits.last().expect("a full page has a last hit");
            Cursor {
                score: last.score,
                id: last.id,
            }
        });
        Page { hits, next }
    }
}

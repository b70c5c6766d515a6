//! The reference search: every cleaner checked and scored, which the index is tested
//! against.

use super::*;

/// Returns the page of `cleaners` that `query` asks for, looking at every one: the
/// reference [`SearchIndex::search`] must agree with.
pub fn scan<'a>(cleaners: impl IntoIterator<Item = &'a Cleaner>, query: &SearchQuery) -> Page {
    let needle = Needle::new(&query.text);
    let mut filter = Filter::new(query, &needle);
    let mut best = TopHits::new(query.limit);
    for cleaner in cleaners {
        if let Some(hit) = filter.hit(cleaner) {
            best.push(Ranked(hit));
        }
    }
    best.into_page()
}

//! A query's conditions as a search checks them: first on a member's packed key, then
//! exactly on the cleaner.

use super::*;

/// A query's rules applied to one cleaner at a time, cheapest first; the query's start is
/// read once per time zone.
pub(super) struct Filter<'q> {
    pub(super) query: &'q SearchQuery,
    pub(super) local_starts: Vec<(Zone, LocalStart)>,
    pub(super) needle: &'q Needle<'q>,
}

impl<'q> Filter<'q> {
    pub(super) fn new(query: &'q SearchQuery, needle: &'q Needle<'q>) -> Self {
        Filter {
            query,
            local_starts: Vec::new(),
            needle,
        }
    }

    /// Whether anyone summed up in `summary` may be free for the query's window: false
    /// means nobody in the cell is.
    pub(super) fn may_hit_any(&mut self, summary: &CellSummary) -> bool {
        match summary.zone {
            Some(zone) => self.window_may_fit(zone, &summary.day_spans),
            None => true,
        }
    }

    /// Whether the query's window (if any) may fit `day_spans`, read in `zone`.
    pub(super) fn window_may_fit(&mut self, zone: Zone, day_spans: &[DaySpan; 7]) -> bool {
        self.query.window.is_none_or(|(starts_at, minutes)| {
            let local = self.local_start(starts_at, zone);
            day_spans
                .get(usize::from(local.weekday))
                .is_some_and(|span| span.may_hold(local.minute, minutes))
        })
    }

    /// Returns the hit `cleaner` makes, if it answers the query and comes after its cursor.
    pub(super) fn hit(&mut self, cleaner: &Cleaner) -> Option<Hit> {
        let query = self.query;
        let plain = cleaner.services.contains(query.services)
            && query
                .max_rate_cents
                .is_none_or(|max| cleaner.hourly_rate_cents <= max)
            && query
                .min_rating
                .is_none_or(|min| cleaner.mean_rating().unwrap_or(0.0) >= min);
        if !plain {
            return None;
        }
        let distance = distance_km(query.at, cleaner.area);
        if distance > query.radius_km || distance > cleaner.service_radius_km {
            return None;
        }
        let hit = Hit {
            id: cleaner.id,
            distance_km: distance,
            score: score(cleaner, distance, query.radius_km),
        };
        let after_cursor = query.after.is_none_or(|cursor| {
            let last = Hit {
                id: cursor.id,
                distance_km: 0.0,
                score: cursor.score,
            };
            best_first(&hit, &last) == Ordering::Greater
        });
        if !after_cursor || !cleaner.matches_text(self.needle) {
            return None;
        }
        if let Some((starts_at, minutes)) = query.window {
            let local = self.local_start(starts_at, cleaner.timezone);
            if !cleaner.is_free_from(local, starts_at, minutes) {
                return None;
            }
        }
        Some(hit)
    }

    pub(super) fn local_start(&mut self, starts_at: DateTime<Utc>, timezone: Zone) -> LocalStart {
        if let Some((_, local)) = self.local_starts.iter().find(|(zone, _)| *zone == timezone) {
            return *local;
        }
        let local = local_start(starts_at, timezone);
        self.local_starts.push((timezone, local));
        local
    }
}

/// The checks a member's [`Key`] decides (service, rate, rating and the text's character
/// pairs), with what the query leaves out made to admit everyone. They are done without
/// branching, since a search does them thousands of times and most fail; `false` means no
/// hit, `true` that the distance, the hours and then [`Filter::hit`] decide.
///
/// The limits are made what a key holds the same way as the key's own numbers, so that
/// they can only let more through: a rate at most the limit stays at most the clamped
/// limit, and a rating at least the limit, multiplied and rounded up, stays at least the
/// limit multiplied (capped at what a key can hold).
pub(super) struct PlainFilter {
    /// The largest rate and the most a rating may lack, laid out as in [`Plain`], with
    /// both guard bits set.
    pub(super) limits: u32,
    /// The services asked for, laid out as in [`Plain`].
    pub(super) services: u32,
    pub(super) text_mask: u64,
}

impl PlainFilter {
    pub(super) fn new(query: &SearchQuery, needle: &Needle<'_>) -> Self {
        let min_rating = query.min_rating.map_or(0.0, |min| min * RATING_STEPS);
        // Rounded down and saturating, so at most the multiplied limit.
        let min_rating = min_rating.clamp(0.0, f64::from(u8::MAX)).floor() as u8;
        let max_rate = query.max_rate_cents.map_or(u16::MAX, key_rate);
        Self::with(max_rate, min_rating, query.services, needle.mask())
    }

    /// The filter of keys with at most `max_rate`, at least `min_rating`, every service of
    /// `services` and every bit of `text_mask`.
    pub(super) fn with(max_rate: u16, min_rating: u8, services: Services, text_mask: u64) -> Self {
        PlainFilter {
            limits: u32::from(max_rate)
                | RATE_GUARD
                | u32::from(u8::MAX - min_rating) << LACK_SHIFT
                | LACK_GUARD,
            services: Plain::new(0, u8::MAX, services).0,
            text_mask,
        }
    }

    /// Subtracting the key's word from the limits leaves a guard bit set when the field
    /// below it did not borrow: the rate is at most the largest, and the rating lacks at
    /// most what it may (it is at least the least). The bits above the guards are left
    /// over; the services and the text are checked as sets.
    pub(super) fn admits(&self, key: &Key) -> bool {
        let guards = RATE_GUARD | LACK_GUARD;
        let plain = (self.limits.wrapping_sub(key.plain.0) & guards) ^ guards
            | (!key.plain.0 & self.services);
        (u64::from(plain) | (!key.text_mask & self.text_mask)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cleaner::Services;

    const SERVICE_NAMES: [&str; 4] = crate::domain::cleaner::SERVICES;

    /// The packed check of [`PlainFilter::admits`] against the three checks it stands for,
    /// at and around every edge of the fields.
    #[test]
    fn one_subtraction_checks_rate_rating_and_services() {
        let rates = [0, 1, 2, 4_499, 4_500, 4_501, u16::MAX - 1, u16::MAX];
        let ratings = [0, 1, 174, 175, 176, u8::MAX - 1, u8::MAX];
        for (rate, max_rate) in rates.into_iter().flat_map(|a| rates.map(|b| (a, b))) {
            for (rating, min_rating) in ratings.into_iter().flat_map(|a| ratings.map(|b| (a, b))) {
                for (offered, wanted) in (0..16u8).flat_map(|a| (0..16u8).map(move |b| (a, b))) {
                    let names = |bits: u8| {
                        (0..4)
                            .filter(move |bit| bits & (1 << bit) != 0)
                            .map(|bit| SERVICE_NAMES[bit])
                    };
                    let (offered, wanted) = (
                        Services::parse(names(offered)).unwrap(),
                        Services::parse(names(wanted)).unwrap(),
                    );
                    let key = Key {
                        text_mask: 0b1011,
                        static_score: 0.5,
                        plain: Plain::new(rate, rating, offered),
                    };
                    let filter =
                        |text_mask| PlainFilter::with(max_rate, min_rating, wanted, text_mask);
                    let expected =
                        rate <= max_rate && rating >= min_rating && offered.contains(wanted);
                    assert_eq!(
                        filter(0b11).admits(&key),
                        expected,
                        "{rate} {max_rate} {rating} {min_rating} {offered:?} {wanted:?}"
                    );
                    assert!(!filter(0b111).admits(&key));
                }
            }
        }
    }
}

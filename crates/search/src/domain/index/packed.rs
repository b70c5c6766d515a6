//! What a cell keeps of each member, packed: the [`Key`] every walked member is read for
//! and the [`Spot`] of the few its key admits.

use super::*;

/// A cleaner in a cell, in two parts kept in two arrays in the same order: the [`Key`] a
/// search reads of every member it walks, and the [`Spot`] it reads of the few whose key
/// admits them. Together they rule out most cleaners without reading the cleaner (a cache
/// miss each). Their numbers are rounded the way that can only let more cleaners through,
/// and [`Filter::hit`] then decides exactly on the cleaner.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    pub(super) key: Key,
    pub(super) spot: Spot,
}

/// What a search reads of every member it walks (thousands at 1M cleaners, most of them
/// ruled out here), in 16 bytes, so that four share a cache line.
#[derive(Debug, Clone, Copy)]
pub(super) struct Key {
    pub(super) text_mask: u64,
    /// Rounded up to an `f32`.
    pub(super) static_score: f32,
    /// The rate, the rating and the services (see [`Plain`]).
    pub(super) plain: Plain,
}

/// A member's rate, rating and services in one word, laid out so that a query's limits
/// are checked with one subtraction (see [`PlainFilter::admits`]):
/// - bits 0–15: the hourly rate in cents, between 0 and `u16::MAX`;
/// - bit 16: 0 (a guard: the borrow of the rate's check stops there);
/// - bits 17–24: 255 less the mean rating in fiftieths of a star, rounded up (what the
///   rating lacks of 5.1 stars);
/// - bit 25: 0 (the guard of the rating's check);
/// - bits 26–31: the services, bit 26 + i for `SERVICES[i]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plain(pub(super) u32);

pub(super) const RATE_GUARD: u32 = 1 << 16;
pub(super) const LACK_SHIFT: u32 = 17;
pub(super) const LACK_GUARD: u32 = 1 << 25;
pub(super) const SERVICES_SHIFT: u32 = 26;
const _: () = assert!(
    crate::domain::cleaner::SERVICES.len() <= 6,
    "the services fit in 6 bits"
);

impl Plain {
    pub(super) fn new(rate: u16, rating: u8, services: Services) -> Self {
        Plain(
            u32::from(rate)
                | u32::from(u8::MAX - rating) << LACK_SHIFT
                | u32::from(services.bits()) << SERVICES_SHIFT,
        )
    }
}

/// What a search reads of a member whose key admits them: where they are, how far they
/// go and when they may work.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spot {
    /// The area as a unit vector, within [`AREA_ERROR`].
    pub(super) area: [f32; 3],
    /// The chord of the cleaner's own service radius (see [`chord_of_km`]), with
    /// `CHORD_SLACK`, rounded up.
    pub(super) service_chord: f32,
    pub(super) slot: u32,
    /// When they may work on each weekday (0 = Monday), in `timezone`.
    pub(super) day_spans: [DaySpan; 7],
    pub(super) timezone: Zone,
}

/// How many fiftieths of a star a [`Key`]'s rating counts in.
pub(super) const RATING_STEPS: f64 = 50.0;

/// How far a member's `f32` area may be from the cleaner's, as a chord of the unit sphere
/// (each coordinate is within 2⁻²⁴ of the exact one: about 0.7 m at most; 1.3 m allowed).
pub(super) const AREA_ERROR: f64 = 2e-7;

/// Returns `value` as an `f32` no smaller than it.
pub(super) fn f32_up(value: f64) -> f32 {
    let rounded = value as f32;
    if f64::from(rounded) < value {
        rounded.next_up()
    } else {
        rounded
    }
}

/// Returns `rate` clamped to what a [`Key`] holds.
pub(super) fn key_rate(rate: i64) -> u16 {
    u16::try_from(rate.max(0)).unwrap_or(u16::MAX)
}

impl Member {
    pub(super) fn of(cleaner: &Cleaner, slot: u32) -> Self {
        let rating = (cleaner.mean_rating().unwrap_or(0.0) * RATING_STEPS).ceil();
        Member {
            key: Key {
                text_mask: cleaner.text_mask(),
                static_score: f32_up(static_score(cleaner)),
                plain: Plain::new(
                    key_rate(cleaner.hourly_rate_cents),
                    // Saturating: a rating above 5.1 stars reads as 5.1.
                    rating as u8,
                    cleaner.services,
                ),
            },
            spot: Spot {
                area: unit_vector(cleaner.area).map(|coordinate| coordinate as f32),
                service_chord: f32_up(chord_of_km(cleaner.service_radius_km) * (1.0 + CHORD_SLACK)),
                slot,
                day_spans: cleaner.day_spans(),
                timezone: cleaner.timezone,
            },
        }
    }
}

impl Spot {
    /// The squared chord from `at` to the member's area, to be compared with limits
    /// widened by [`AREA_ERROR`] (see [`widened_sq`]).
    pub(super) fn chord_sq(&self, at: [f64; 3]) -> f64 {
        chord_sq(at, self.area.map(f64::from))
    }
}

/// Returns the square of `chord` widened by [`AREA_ERROR`]: a member whose squared chord
/// exceeds it is surely farther than `chord`.
pub(super) fn widened_sq(chord: f64) -> f64 {
    (chord + AREA_ERROR).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_keys_share_a_cache_line() {
        assert_eq!(std::mem::size_of::<Key>(), 16);
    }

    #[test]
    fn rounding_up_to_f32_never_lowers() {
        for value in [
            0.0,
            1e-9,
            0.1,
            3.5,
            3.7,
            4.999_999_9,
            0.631_234_567_89,
            1e-3 / 3.0,
        ] {
            assert!(f64::from(f32_up(value)) >= value, "{value}");
            assert!(f64::from(f32_up(value)) - value <= value * 1e-7, "{value}");
        }
    }
}

//! One round of matching: open bookings, each with the cleaners who may take it, turned
//! into costs and solved in the mode the run asks for.
//!
//! The hard constraints (service offered, within the cleaner's radius, free in their own
//! time zone, no overlap with their bookings) decide who is a candidate at all: search's
//! read model applies them when the `auto-assign` job asks it, and core checks them again
//! when it assigns. Within a round a cleaner takes at most one booking per day of their
//! own (the booking's date in their time zone): their availability windows lie within a
//! day, so two bookings given to one cleaner in a round never overlap. A second booking
//! the same day waits for the next tick.
//!
//! A booking's cost for a candidate, lower is better, each part from 0 to 1:
//! `0.5 · distance / 10 km + 0.2 · (1 − cheapness) + 0.2 · (1 − rating / 5) + 0.1 · load`,
//! where cheapness and the Bayesian rating are `spruce_domain::pricing`'s and load is the
//! cleaner's jobs in the last week over 10 (at most 1): fairness, so work spreads. A
//! cleaner's own cost, for the stable mode, prefers near and long jobs:
//! `distance / 10 km − duration / 600 min`.

use uuid::Uuid;

use super::{
    solver::{Assignment, Costs, solve},
    stable::{blocking_pairs, stable},
};
use spruce_domain::pricing::{bayesian_rating, cheapness};

/// Who may take a booking, as search found them.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub cleaner_id: Uuid,
    pub distance_km: f64,
    pub hourly_rate_cents: i64,
    pub rating_avg: f64,
    pub rating_count: u32,
    /// Bookings they hold now (requested, confirmed or in progress).
    pub held_bookings: u32,
    /// The booking's date in the cleaner's time zone, as days since 1970-01-01.
    pub day: i32,
}

/// A booking without a cleaner and its candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenBooking {
    pub booking_id: Uuid,
    pub duration_min: u32,
    pub candidates: Vec<Candidate>,
}

/// How a round chooses (`cheapest` or `stable` in settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The least total cost (the most bookings placed first).
    Cheapest,
    /// Stable by deferred acceptance: cleaners' preferences count too.
    Stable,
}

/// What a round decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// (booking, cleaner), in the bookings' order.
    pub assigned: Vec<(Uuid, Uuid)>,
    pub unassigned: Vec<Uuid>,
    pub total_cost: f64,
    /// Pairs that would both rather be together (0 in stable mode).
    pub blocking_pairs: usize,
}

/// Distances count up to this, in km, for both sides' costs.
const DISTANCE_SCALE_KM: f64 = 10.0;

/// A booking's cost for `candidate` (see the module's doc).
pub fn booking_cost(candidate: &Candidate) -> f64 {
    let distance = (candidate.distance_km / DISTANCE_SCALE_KM).min(1.0);
    let rating = bayesian_rating(candidate.rating_avg, candidate.rating_count) / 5.0;
    let load = (f64::from(candidate.held_bookings) / 10.0).min(1.0);
    0.5 * distance
        + 0.2 * (1.0 - cheapness(candidate.hourly_rate_cents))
        + 0.2 * (1.0 - rating)
        + 0.1 * load
}

/// A cleaner's own cost for a booking `duration_min` long, `distance_km` away.
pub fn cleaner_cost(distance_km: f64, duration_min: u32) -> f64 {
    (distance_km / DISTANCE_SCALE_KM).min(1.0) - f64::from(duration_min) / 600.0
}

/// Decides one round.
pub fn plan(bookings: &[OpenBooking], mode: Mode) -> Round {
    // One column per cleaner and day of theirs.
    let mut cleaners: Vec<(Uuid, i32)> = bookings
        .iter()
        .flat_map(|booking| {
            booking
                .candidates
                .iter()
                .map(|candidate| (candidate.cleaner_id, candidate.day))
        })
        .collect();
    cleaners.sort_unstable();
    cleaners.dedup();
    let column = |candidate: &Candidate| {
        cleaners
            .binary_search(&(candidate.cleaner_id, candidate.day))
            .expect("every candidate has a column")
    };
    let mut costs = Costs::new(cleaners.len());
    let mut theirs = Costs::new(cleaners.len());
    for booking in bookings {
        // A cleaner listed twice for one booking counts once, at their first listing.
        let mut seen: Vec<usize> = Vec::new();
        let mut mine = Vec::new();
        let mut their = Vec::new();
        for candidate in &booking.candidates {
            let at = column(candidate);
            if seen.contains(&at) || !candidate.distance_km.is_finite() {
                continue;
            }
            seen.push(at);
            mine.push((at, booking_cost(candidate)));
            their.push((
                at,
                cleaner_cost(candidate.distance_km, booking.duration_min),
            ));
        }
        costs
            .push_row(mine)
            .expect("columns in range, costs finite");
        theirs
            .push_row(their)
            .expect("columns in range, costs finite");
    }
    let assignment: Assignment = match mode {
        Mode::Cheapest => solve(&costs),
        Mode::Stable => stable(&costs, &theirs),
    };
    let mut assigned = Vec::new();
    let mut unassigned = Vec::new();
    for (booking, column) in bookings.iter().zip(&assignment.columns) {
        match column {
            Some(column) => assigned.push((booking.booking_id, cleaners[*column].0)),
            None => unassigned.push(booking.booking_id),
        }
    }
    Round {
        assigned,
        unassigned,
        total_cost: assignment.total_cost,
        blocking_pairs: blocking_pairs(&costs, &theirs, &assignment),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn candidate(
        n: u128,
        distance_km: f64,
        rate: i64,
        rating: (f64, u32),
        recent: u32,
    ) -> Candidate {
        Candidate {
            cleaner_id: Uuid::from_u128(n),
            distance_km,
            hourly_rate_cents: rate,
            rating_avg: rating.0,
            rating_count: rating.1,
            held_bookings: recent,
            day: 0,
        }
    }

    #[test]
    fn nearer_cheaper_better_rated_and_less_busy_cost_less() {
        let base = candidate(1, 3.0, 3_000, (4.5, 20), 2);
        let cost = booking_cost(&base);
        assert!(
            booking_cost(&Candidate {
                distance_km: 1.0,
                ..base.clone()
            }) < cost
        );
        assert!(
            booking_cost(&Candidate {
                hourly_rate_cents: 2_000,
                ..base.clone()
            }) < cost
        );
        assert!(
            booking_cost(&Candidate {
                rating_avg: 5.0,
                ..base.clone()
            }) < cost
        );
        assert!(
            booking_cost(&Candidate {
                held_bookings: 0,
                ..base.clone()
            }) < cost
        );
        assert!((0.0..=1.0).contains(&cost));
        assert!(cleaner_cost(2.0, 180) < cleaner_cost(2.0, 60));
        assert!(cleaner_cost(1.0, 120) < cleaner_cost(5.0, 120));
    }

    #[test]
    fn work_spreads_to_the_less_busy_of_two_alike() {
        let booking = |n: u128| OpenBooking {
            booking_id: Uuid::from_u128(100 + n),
            duration_min: 120,
            candidates: vec![
                candidate(1, 2.0, 3_000, (4.8, 30), 9),
                candidate(2, 2.0, 3_000, (4.8, 30), 0),
            ],
        };
        let round = plan(&[booking(1)], Mode::Cheapest);
        assert_eq!(
            round.assigned,
            vec![(Uuid::from_u128(101), Uuid::from_u128(2))]
        );
        // Two bookings, two cleaners: each gets one, never both to one cleaner.
        let round = plan(&[booking(1), booking(2)], Mode::Cheapest);
        assert_eq!(round.assigned.len(), 2);
        assert_ne!(round.assigned[0].1, round.assigned[1].1);
        // Three bookings, two cleaners: one waits for the next tick.
        let round = plan(&[booking(1), booking(2), booking(3)], Mode::Cheapest);
        assert_eq!((round.assigned.len(), round.unassigned.len()), (2, 1));
        // On different days of theirs, one cleaner takes both.
        let on_day = |n: u128, day: i32| OpenBooking {
            booking_id: Uuid::from_u128(200 + n),
            duration_min: 120,
            candidates: vec![Candidate {
                day,
                ..candidate(1, 2.0, 3_000, (4.8, 30), 0)
            }],
        };
        let round = plan(
            &[on_day(1, 10), on_day(2, 11), on_day(3, 11)],
            Mode::Cheapest,
        );
        assert_eq!((round.assigned.len(), round.unassigned.len()), (2, 1));
        // No candidates: unassigned, and nothing breaks.
        let lonely = OpenBooking {
            booking_id: Uuid::from_u128(9),
            duration_min: 60,
            candidates: Vec::new(),
        };
        let round = plan(&[lonely], Mode::Stable);
        assert_eq!(round.unassigned, vec![Uuid::from_u128(9)]);
    }

    prop_compose! {
        fn bookings()(count in 1..12usize, cleaners in 1..8u128)
            (lists in prop::collection::vec(
                prop::collection::vec((1..=cleaners, 0.0..15.0f64, 500..6_000i64, 1.0..5.0f64, 0..50u32, 0..12u32), 0..6),
                count),
             days in prop::collection::vec(0..3i32,
                count),
             durations in prop::collection::vec(60..600u32, count))
            -> Vec<OpenBooking>
        {
            lists.into_iter().zip(durations).zip(days).enumerate().map(|(n, ((list, duration_min), day))| OpenBooking {
                booking_id: Uuid::from_u128(1_000 + n as u128),
                duration_min,
                // A booking's day is the same for all its candidates here (one zone).
                candidates: list.into_iter().map(|(cleaner, distance, rate, avg, count, recent)|
                    Candidate { day, ..candidate(cleaner, distance, rate, (avg, count), recent) }).collect(),
            }).collect()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn rounds_respect_candidates_and_the_modes_keep_their_promises(bookings in bookings()) {
            let cheapest = plan(&bookings, Mode::Cheapest);
            let stable = plan(&bookings, Mode::Stable);
            for round in [&cheapest, &stable] {
                prop_assert_eq!(round.assigned.len() + round.unassigned.len(), bookings.len());
                let day_of = |booking_id: &Uuid| bookings.iter().find(|booking| booking.booking_id == *booking_id).unwrap().candidates[0].day;
                let mut cleaner_days: Vec<(Uuid, i32)> = round.assigned.iter().map(|(booking, cleaner)| (*cleaner, day_of(booking))).collect();
                cleaner_days.sort_unstable();
                let before = cleaner_days.len();
                cleaner_days.dedup();
                prop_assert_eq!(cleaner_days.len(), before, "a cleaner twice on one day in one round");
                for (booking_id, cleaner_id) in &round.assigned {
                    let booking = bookings.iter().find(|booking| booking.booking_id == *booking_id).unwrap();
                    prop_assert!(booking.candidates.iter().any(|candidate| candidate.cleaner_id == *cleaner_id));
                }
            }
            prop_assert_eq!(stable.blocking_pairs, 0);
            // The cheapest mode places at least as many, and no more dearly for as many.
            prop_assert!(cheapest.assigned.len() >= stable.assigned.len());
            if cheapest.assigned.len() == stable.assigned.len() {
                prop_assert!(cheapest.total_cost <= stable.total_cost + 1e-9);
            }
        }
    }
}

//! Search's domain, free of I/O: the cleaners of the read model, a validated query, the
//! spatial index that answers it, and the documented score that ranks the answer.

pub mod cleaner;
pub mod duration;
pub mod index;
pub mod query;
pub mod readmodel;
pub mod recommend;
pub mod score;

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// At or below the version held, or about a booking long over.
    Stale,
}

/// A map keyed by ids core made (never by a client's choice), hashed with foldhash: the
/// read model loads millions of them, and SipHash was a third of the load's CPU.
pub type IdMap<V> = std::collections::HashMap<uuid::Uuid, V, foldhash::fast::RandomState>;

/// Kilometres between two points on the Earth (haversine, mean radius 6,371 km): the same
/// measure core uses for a cleaner's service radius.
pub fn distance_km(from: (f64, f64), to: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lng1) = (from.0.to_radians(), from.1.to_radians());
    let (lat2, lng2) = (to.0.to_radians(), to.1.to_radians());
    let haversine = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lng2 - lng1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * haversine.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_haversine_kilometres() {
        // Berlin's Alexanderplatz to the Brandenburg Gate: about 2.5 km.
        let distance = distance_km((52.5219, 13.4132), (52.5163, 13.3777));
        assert!((distance - 2.47).abs() < 0.05, "{distance}");
        assert!(distance_km((10.0, 20.0), (10.0, 20.0)).abs() < 1e-9);
    }
}

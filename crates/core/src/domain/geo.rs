//! Points on Earth: validated coordinates, distances, and the displaced point customers see
//! a cleaner at.

use super::FieldError;

/// A point on Earth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    pub lat: f64,
    pub lng: f64,
}

/// The point customers see a cleaner at (search's filter, ranking and distances) lies at
/// least this far from the home, in km: 300 m, and room for what rounding hides...
pub const AREA_MIN_KM: f64 = 0.32;
/// ...and at most this far.
pub const AREA_MAX_KM: f64 = 0.8;

impl GeoPoint {
    /// Accepts latitudes in [-90, 90] and longitudes in [-180, 180].
    ///
    /// # Errors
    /// One field error per coordinate out of range, under `{prefix}lat` / `{prefix}lng`.
    pub fn parse(
        lat: f64,
        lng: f64,
        fields: (&'static str, &'static str),
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(-90.0..=90.0).contains(&lat) {
            errors.push(FieldError::new(fields.0, "must be between -90 and 90"));
        }
        if !(-180.0..=180.0).contains(&lng) {
            errors.push(FieldError::new(fields.1, "must be between -180 and 180"));
        }
        if errors.is_empty() {
            Ok(GeoPoint { lat, lng })
        } else {
            Err(errors)
        }
    }

    /// Returns the point `distance_km` away towards `bearing` (radians clockwise from
    /// north), on the flat approximation that holds within a few kilometres.
    pub fn moved(&self, bearing: f64, distance_km: f64) -> GeoPoint {
        const KM_PER_DEGREE: f64 = 111.195;
        GeoPoint {
            lat: self.lat + distance_km / KM_PER_DEGREE * bearing.cos(),
            lng: self.lng
                + distance_km / (KM_PER_DEGREE * self.lat.to_radians().cos()) * bearing.sin(),
        }
    }

    /// Returns the point customers see a cleaner living here at: between
    /// [`AREA_MIN_KM`] and [`AREA_MAX_KM`] away, spread evenly over that ring by two draws
    /// in [0, 1): `turn` the direction, `spread` the distance.
    pub fn displaced(&self, turn: f64, spread: f64) -> GeoPoint {
        let (inner, outer) = (AREA_MIN_KM.powi(2), AREA_MAX_KM.powi(2));
        let distance_km = (inner + spread * (outer - inner)).sqrt();
        self.moved(turn * std::f64::consts::TAU, distance_km)
    }

    /// Returns the great-circle distance to `other` in kilometres.
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0;
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let delta_lat = (other.lat - self.lat).to_radians();
        let delta_lng = (other.lng - self.lng).to_radians();
        let haversine = (delta_lat / 2.0).sin().powi(2)
            + lat1.cos() * lat2.cos() * (delta_lng / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * haversine.sqrt().asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circle_kilometres() {
        let berlin = GeoPoint {
            lat: 52.5200,
            lng: 13.4050,
        };
        let potsdam = GeoPoint {
            lat: 52.3906,
            lng: 13.0645,
        };
        let distance = berlin.distance_km(&potsdam);
        assert!((distance - 27.0).abs() < 1.0, "{distance}");
    }

    #[test]
    fn a_displaced_point_lies_on_the_ring_and_every_direction_is_drawn() {
        let home = GeoPoint {
            lat: 52.52,
            lng: 13.405,
        };
        let mut quadrants = [0_u32; 4];
        for step in 0..400 {
            let (turn, spread) = (f64::from(step) / 400.0, f64::from(step * 37 % 400) / 400.0);
            let area = home.displaced(turn, spread);
            let distance = home.distance_km(&area);
            assert!(
                (AREA_MIN_KM - 0.001..=AREA_MAX_KM + 0.001).contains(&distance),
                "{distance}"
            );
            let index = usize::from(area.lat > home.lat) * 2 + usize::from(area.lng > home.lng);
            quadrants[index] += 1;
        }
        assert!(quadrants.iter().all(|count| *count > 80), "{quadrants:?}");
        // The same draws give the same point: fixed until the home moves.
        assert_eq!(home.displaced(0.3, 0.6), home.displaced(0.3, 0.6));
    }
}

//! Points, cells and areas on the sphere: unit vectors, chords and the bounds a search
//! draws from them.

use super::*;

pub(super) const EARTH_RADIUS_KM: f64 = 6371.0;

/// The side of a cell in degrees: about 3.3 km north to south, 2 km east to west in
/// Berlin; a 1M-cleaner city of 60 × 60 km puts about 1,900 in each, a 100k one 190. (At
/// 0.02° a 100k search took a sixth longer, bounding and visiting more cells; a 1M search
/// took as long.)
pub(super) const CELL_DEGREES: f64 = 0.03;

/// Slack added to every bound so that rounding never prunes a cleaner that ties.
pub(super) const BOUND_SLACK: f64 = 1e-9;

/// Relative slack on the squared chords a cleaner's distance is first checked with, so that
/// rounding never rules out someone the exact distance lets in.
pub(super) const CHORD_SLACK: f64 = 1e-9;

/// A cell's or a part's rectangle, as a search bounds the distance to anyone in it.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(super) struct Area {
    /// The centre, as a unit vector.
    pub(super) centre: [f64; 3],
    /// The longest chord from the centre to any point of the rectangle.
    pub(super) reach: f64,
}

impl Area {
    /// Returns the nearness (see [`nearness`]) of the area's nearest possible point to a
    /// search at `at` (a unit vector) of `radius_km`, or `None` when all of it is beyond
    /// the radius. An arc is longer than its chord, so this is at least anyone's in it,
    /// and costs no trigonometry.
    pub(super) fn nearness(&self, at: [f64; 3], radius_km: f64) -> Option<f64> {
        let nearest_km = EARTH_RADIUS_KM * (chord(at, self.centre) - self.reach).max(0.0);
        (nearest_km <= radius_km).then(|| nearness(nearest_km, radius_km))
    }
}

/// The part of a bound that nearness adds: its weight in the score, and the slack.
pub(super) fn nearness_bound(nearness: f64) -> f64 {
    NEARNESS_WEIGHT * nearness + BOUND_SLACK
}

pub(super) type CellKey = (i32, i32);

pub(super) fn unit_vector((lat, lng): (f64, f64)) -> [f64; 3] {
    let (lat, lng) = (lat.to_radians(), lng.to_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

pub(super) fn chord_sq([x1, y1, z1]: [f64; 3], [x2, y2, z2]: [f64; 3]) -> f64 {
    (x1 - x2).powi(2) + (y1 - y2).powi(2) + (z1 - z2).powi(2)
}

pub(super) fn chord(a: [f64; 3], b: [f64; 3]) -> f64 {
    chord_sq(a, b).sqrt()
}

/// The chord of the unit sphere spanning `km` of its surface (at most the diameter).
pub(super) fn chord_of_km(km: f64) -> f64 {
    2.0 * (km / (2.0 * EARTH_RADIUS_KM))
        .clamp(0.0, std::f64::consts::FRAC_PI_2)
        .sin()
}

pub(super) fn cell_of((lat, lng): (f64, f64)) -> CellKey {
    (
        (lat / CELL_DEGREES).floor() as i32,
        (lng / CELL_DEGREES).floor() as i32,
    )
}

/// Returns the area of the rectangle of `height` × `width` degrees whose south-west corner
/// is `(south, west)`.
pub(super) fn rectangle((south, west): (f64, f64), (height, width): (f64, f64)) -> Area {
    let (north, east) = (south + height, west + width);
    let centre_point = ((south + north) / 2.0, (west + east) / 2.0);
    let centre = unit_vector(centre_point);
    // A small spherical rectangle is farthest from its centre at a corner; edge midpoints
    // too, and a percent more, for safety.
    let reach = [
        (south, west),
        (south, east),
        (north, west),
        (north, east),
        (south, centre_point.1),
        (north, centre_point.1),
        (centre_point.0, west),
        (centre_point.0, east),
    ]
    .into_iter()
    .map(|corner| chord(centre, unit_vector(corner)))
    .fold(0.0, f64::max)
        * 1.01;
    Area { centre, reach }
}

/// The column ranges that may hold someone within `radius_km` of `at`: every column when
/// a pole is that near, two ranges across the antimeridian.
pub(super) fn column_ranges(at: (f64, f64), radius_km: f64) -> Vec<(i32, i32)> {
    let all = vec![(i32::MIN, i32::MAX)];
    let angle = radius_km / EARTH_RADIUS_KM;
    let dlat = angle.to_degrees();
    if at.0.abs() + dlat >= 89.0 {
        return all;
    }
    let ratio = angle.sin() / at.0.to_radians().cos();
    if ratio >= 1.0 {
        return all;
    }
    // One cell of margin each side for rounding.
    let dlng = ratio.asin().to_degrees() + CELL_DEGREES;
    let (west, east) = (at.1 - dlng, at.1 + dlng);
    let column = |lng: f64| (lng / CELL_DEGREES).floor() as i32;
    if east - west >= 360.0 {
        return all;
    }
    let mut ranges = vec![(column(west.max(-180.0)), column(east.min(180.0)))];
    if west < -180.0 {
        ranges.push((column(west + 360.0), column(180.0)));
    }
    if east > 180.0 {
        ranges.push((column(-180.0), column(east - 360.0)));
    }
    ranges
}

/// At least the distance in km between two points whose chord of the unit sphere is at
/// least `chord` (an arc is longer than its chord).
pub(super) fn km_at_least(chord: f64) -> f64 {
    EARTH_RADIUS_KM * chord.max(0.0)
}

/// At most the distance in km between two points whose chord of the unit sphere is at
/// most `chord`: the arc is 2·asin(chord / 2), and asin y ≤ y + y³/4 for 0 ≤ y ≤ 1/2, so
/// it is at most chord + chord³/16 up to a chord of 1 (6,371 km); beyond, no bound.
pub(super) fn km_at_most(chord: f64) -> f64 {
    if chord > 1.0 {
        return f64::INFINITY;
    }
    EARTH_RADIUS_KM * (chord + chord.powi(3) / 16.0)
}

//! Customers' addresses and the home details a cleaning depends on.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{FieldError, Validator, geo::GeoPoint};

/// A customer's addresses at most.
pub const MAX_ADDRESSES: i64 = 20;

/// A validated address.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressInput {
    pub label: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    pub location: GeoPoint,
    pub size_m2: u32,
    pub bedrooms: u32,
    pub bathrooms: u32,
    pub has_pets: bool,
}

/// The raw fields of an address, as the wire carries them.
#[derive(Debug, Clone, Default)]
pub struct RawAddress<'a> {
    pub label: &'a str,
    pub line1: &'a str,
    pub city: &'a str,
    pub postal_code: &'a str,
    pub lat: f64,
    pub lng: f64,
    pub size_m2: u32,
    pub bedrooms: u32,
    pub bathrooms: u32,
    pub has_pets: bool,
}

impl AddressInput {
    /// Validates every field at once.
    ///
    /// # Errors
    /// One [`FieldError`] per broken rule.
    pub fn parse(raw: &RawAddress<'_>) -> Result<Self, Vec<FieldError>> {
        let mut validator = Validator::default();
        let label = validator.text("label", raw.label, 50);
        let line1 = validator.text("line1", raw.line1, 200);
        let city = validator.text("city", raw.city, 100);
        let postal_code = validator.text("postal_code", raw.postal_code, 20);
        let location = GeoPoint::parse(raw.lat, raw.lng, ("lat", "lng"))
            .map_err(|errors| validator.extend(errors))
            .ok();
        validator.check((10..=2_000).contains(&raw.size_m2), "size_m2", || {
            "must be between 10 and 2000".to_owned()
        });
        validator.check(raw.bedrooms <= 20, "bedrooms", || {
            "must be at most 20".to_owned()
        });
        validator.check((1..=20).contains(&raw.bathrooms), "bathrooms", || {
            "must be between 1 and 20".to_owned()
        });
        let location = validator.finish(location)?;
        Ok(AddressInput {
            label,
            line1,
            city,
            postal_code,
            location,
            size_m2: raw.size_m2,
            bedrooms: raw.bedrooms,
            bathrooms: raw.bathrooms,
            has_pets: raw.has_pets,
        })
    }
}

/// A stored address.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub details: AddressInput,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawAddress<'static> {
        RawAddress {
            label: "Home",
            line1: "Torstrasse 1",
            city: "Berlin",
            postal_code: "10119",
            lat: 52.53,
            lng: 13.40,
            size_m2: 70,
            bedrooms: 2,
            bathrooms: 1,
            has_pets: true,
        }
    }

    #[test]
    fn a_valid_address_parses_trimmed() {
        let address = AddressInput::parse(&RawAddress {
            label: "  Home ",
            ..raw()
        })
        .unwrap();
        assert_eq!(address.label, "Home");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let bad = RawAddress {
            label: "",
            city: " ",
            lng: 200.0,
            size_m2: 5,
            bathrooms: 0,
            ..raw()
        };
        let fields: Vec<_> = AddressInput::parse(&bad)
            .unwrap_err()
            .into_iter()
            .map(|error| error.field)
            .collect();
        assert_eq!(fields, ["label", "city", "lng", "size_m2", "bathrooms"]);
    }
}

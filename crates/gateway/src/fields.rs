//! Request fields read leniently and checked together: each field of a request type is a
//! [`Field<T>`] that remembers whether it was absent, unreadable as `T`, or a `T`; a
//! [`Checks`] then takes the values and names every field at fault in one 422, rather than
//! the first serde stumbles on. Works for JSON bodies and query strings alike (a query's
//! `"52.5"` is read as the number it spells).

use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use spruce_domain::reason::FieldError;

use crate::error::ApiError;

/// One field of a request, as sent.
#[derive(Debug, Clone, Default)]
pub enum Field<T> {
    /// Not sent (the request type gives the field `#[serde(default)]`).
    #[default]
    Absent,
    /// Sent, but not a `T` (`null` included): what was sent.
    Invalid(serde_json::Value),
    Valid(T),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if let Ok(valid) = serde_json::from_value::<T>(value.clone()) {
            return Ok(Field::Valid(valid));
        }
        // A query string holds text only: "52.5", "true".
        let spelled = value
            .as_str()
            .and_then(|text| serde_json::from_str::<T>(text.trim()).ok());
        Ok(spelled.map_or(Field::Invalid(value), Field::Valid))
    }
}

/// Collects every field at fault.
#[derive(Debug, Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    /// The value of a field that must be sent; `expected` says what it must be, as in
    /// "must be a UUID".
    pub fn required<T>(&mut self, name: &str, field: Field<T>, expected: &str) -> Option<T> {
        if matches!(field, Field::Absent) {
            self.0.push(FieldError::new(name, "is required"));
            return None;
        }
        self.optional(name, field, expected)
    }

    /// The value of a field that may be left out.
    pub fn optional<T>(&mut self, name: &str, field: Field<T>, expected: &str) -> Option<T> {
        match field {
            Field::Absent => None,
            Field::Invalid(_) => {
                self.0.push(FieldError::new(name, expected));
                None
            }
            Field::Valid(value) => Some(value),
        }
    }

    /// Names `name` with `problem`.
    pub fn refuse(&mut self, name: &str, problem: &str) {
        self.0.push(FieldError::new(name, problem));
    }

    /// 422 naming every field at fault, if any.
    ///
    /// # Errors
    /// When a check failed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default)]
        id: Field<uuid::Uuid>,
        #[serde(default)]
        at: Field<DateTime<Utc>>,
        #[serde(default)]
        lat: Field<f64>,
    }

    fn checked(sample: Sample) -> (Vec<String>, Option<f64>) {
        let mut checks = Checks::default();
        checks.required("id", sample.id, "must be a UUID");
        checks.optional("at", sample.at, "must be an RFC 3339 time");
        let lat = checks.required("lat", sample.lat, "must be a number");
        let names = checks.0.iter().map(|error| error.field.clone()).collect();
        (names, lat)
    }

    #[test]
    fn every_field_at_fault_is_named_at_once() {
        let sample: Sample = serde_json::from_str(r#"{"at": "soon", "lat": null}"#).unwrap();
        assert_eq!(checked(sample).0, ["id", "at", "lat"]);
        let sample: Sample = serde_json::from_str(
            r#"{"id": "0869fef9-e2db-5f41-a60f-a364075455c8", "at": "2030-05-17T09:00:00Z", "lat": 52.5}"#,
        )
        .unwrap();
        assert_eq!(checked(sample), (vec![], Some(52.5)));
    }

    #[test]
    fn a_query_strings_text_is_read_as_what_it_spells() {
        let sample: Sample =
            serde_urlencoded::from_str("id=0869fef9-e2db-5f41-a60f-a364075455c8&lat=52.5").unwrap();
        assert_eq!(checked(sample), (vec![], Some(52.5)));
        let sample: Sample = serde_urlencoded::from_str("id=x&lat=north").unwrap();
        assert_eq!(checked(sample).0, ["id", "lat"]);
    }
}

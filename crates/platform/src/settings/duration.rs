//! Durations in settings, written with their unit as humantime reads them: "300ms", "15s",
//! "24h", "7d" ("0" alone means none). Use with `#[serde(deserialize_with = "…")]`.

use std::{fmt, time::Duration};

use serde::{
    Deserialize, Deserializer,
    de::{self, Visitor},
};

struct Text;

impl Visitor<'_> for Text {
    type Value = Duration;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a duration with its unit, such as \"300ms\", \"15s\" or \"24h\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        humantime::parse_duration(text.trim()).map_err(|error| {
            E::custom(format!(
                "{text:?} is not a duration such as \"300ms\", \"15s\" or \"24h\" ({error})"
            ))
        })
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Duration, E> {
        if number == 0 {
            return Ok(Duration::ZERO);
        }
        Err(E::custom(format!(
            "{number} needs its unit, such as \"{number}ms\" or \"{number}s\""
        )))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Duration, E> {
        match u64::try_from(number) {
            Ok(number) => self.visit_u64(number),
            Err(_) => Err(E::custom("a duration cannot be negative")),
        }
    }
}

/// Reads one duration.
///
/// # Errors
/// When the value is not a duration with its unit.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(Text)
}

struct One(Duration);

impl<'de> Deserialize<'de> for One {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(One)
    }
}

/// Reads a list of durations.
///
/// # Errors
/// When an item is not a duration with its unit.
pub fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
    let items = Vec::<One>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|One(duration)| duration).collect())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "deserialize")]
        one: Duration,
        #[serde(deserialize_with = "list")]
        many: Vec<Duration>,
    }

    fn read(toml: &str) -> Result<Sample, String> {
        crate::settings::from_toml(toml).map_err(|error| error.to_string())
    }

    #[test]
    fn durations_are_written_with_their_unit() {
        let sample =
            read("one = \"1m 30s\"\nmany = [\"300ms\", \"15s\", \"24h\", \"7d\"]").unwrap();
        assert_eq!(sample.one, Duration::from_secs(90));
        assert_eq!(
            sample.many,
            [
                Duration::from_millis(300),
                Duration::from_secs(15),
                Duration::from_secs(86_400),
                Duration::from_secs(7 * 86_400)
            ]
        );
        assert_eq!(read("one = 0\nmany = []").unwrap().one, Duration::ZERO);
    }

    #[test]
    fn a_number_without_its_unit_or_a_bad_text_is_refused_naming_the_key() {
        let error = read("one = 300\nmany = []").err().unwrap();
        assert!(
            error.contains("`one`") && error.contains("300ms"),
            "{error}"
        );
        let error = read("one = \"soon\"\nmany = []").err().unwrap();
        assert!(error.contains("`one`") && error.contains("soon"), "{error}");
        let error = read("one = \"1s\"\nmany = [\"1s\", -5]").err().unwrap();
        assert!(error.contains("many"), "{error}");
    }
}

//! Cursor pagination shared by every list: an opaque cursor naming the last row of a page
//! by its (created_at, id), and a bounded page size.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// The largest page size.
pub const MAX_LIMIT: u32 = 100;

/// Where the next page starts: just past this (created_at, id) in the list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// Splits an optional cursor into the two query parameters a keyset page binds
    /// (`(created_at, id) < ($n, $n+1)`, both NULL for the first page).
    pub fn bind_parts(after: Option<Cursor>) -> (Option<DateTime<Utc>>, Option<Uuid>) {
        after.map_or((None, None), |cursor| {
            (Some(cursor.created_at), Some(cursor.id))
        })
    }

    /// Encodes the cursor as an opaque string.
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}", self.created_at.timestamp_micros(), self.id);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes a cursor made by [`Cursor::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let (micros, id) = raw.split_once('|')?;
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }

    /// Decodes an optional wire cursor (empty means the first page).
    ///
    /// # Errors
    /// A message fit for the client when the text is not a cursor we issued.
    pub fn from_wire(text: &str) -> Result<Option<Self>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        Cursor::decode(text)
            .map(Some)
            .ok_or_else(|| "is not a cursor we issued".to_owned())
    }
}

/// Returns the page size for a requested limit (0 means the default).
///
/// # Errors
/// A message fit for the client when the limit is out of range.
pub fn page_limit(requested: u32) -> Result<i64, String> {
    match requested {
        0 => Ok(i64::from(DEFAULT_LIMIT)),
        1..=MAX_LIMIT => Ok(i64::from(requested)),
        _ => Err(format!("must be between 1 and {MAX_LIMIT}")),
    }
}

/// Cuts a page fetched with one row more than `limit` and returns it with the cursor of
/// the next page, if there is one.
pub fn split_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> Cursor,
) -> (Vec<T>, Option<Cursor>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(key) } else { None };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        }
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = cursor();
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::from_wire(&cursor.encode()), Ok(Some(cursor)));
    }

    #[test]
    fn garbage_cursors_are_rejected() {
        assert_eq!(Cursor::decode("not-a-cursor"), None);
        assert!(Cursor::from_wire("not-a-cursor").is_err());
        assert_eq!(Cursor::from_wire(""), Ok(None));
    }

    #[test]
    fn page_limits_are_bounded() {
        assert_eq!(page_limit(0), Ok(20));
        assert_eq!(page_limit(100), Ok(100));
        assert!(page_limit(101).is_err());
    }

    #[test]
    fn a_page_with_an_extra_row_has_a_next_cursor() {
        let rows: Vec<Cursor> = (0..3).map(|_| cursor()).collect();
        let (page, next) = split_page(rows.clone(), 2, |row| *row);
        assert_eq!(page.len(), 2);
        assert_eq!(next, Some(rows[1]));
        let (page, next) = split_page(rows, 3, |row| *row);
        assert_eq!((page.len(), next), (3, None));
    }
}

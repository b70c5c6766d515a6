//! The analytics archive: every event, as analysts read it. An event becomes one row (id,
//! type, time, aggregate and version, its payload as JSON text, trace id) with the personal
//! data taken out of the payload; rows are written as Parquet files partitioned by day,
//! `analytics/events/dt=YYYY-MM-DD/part-<batch>.parquet`.
//!
//! Each file holds one batch of rows on one day, and a batch's rows never change: writing a
//! batch again (after a crash before it was marked written) writes the same files under the
//! same names, so every event is in the archive once.

use std::{
    collections::{BTreeMap, btree_map::Entry},
    sync::Arc,
};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{KeyInit as _, Mac as _};
use parquet::{
    arrow::ArrowWriter, basic::Compression, errors::ParquetError,
    file::properties::WriterProperties,
};
use serde_json::Value;
use spruce_domain::text::lower_hex;

/// Payload fields that name a person: kept as a keyed hash, so that analysts can still
/// count and join by person without knowing who.
const HASHED_FIELDS: &[&str] = &["email", "full_name"];
/// Payload fields left out: secrets (codes and links' tokens) and free text a person wrote,
/// which may hold names, phone numbers or addresses.
const DROPPED_FIELDS: &[&str] = &["code", "token", "bio", "comment"];

/// One archived event.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedEvent {
    pub event_id: String,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    /// The payload as JSON, personal data taken out ([`redact`]).
    pub payload: String,
    pub trace_id: Option<String>,
}

/// Takes the personal data out of `payload` (an event's payload as JSON): names and emails
/// become `hmac-sha256:<hex>` keyed with `key`, secrets and free text go.
pub fn redact(payload: &mut Value, key: &[u8]) {
    match payload {
        Value::Object(fields) => {
            fields.retain(|name, _| !DROPPED_FIELDS.contains(&name.as_str()));
            for (name, value) in fields.iter_mut() {
                match value {
                    Value::String(text) if HASHED_FIELDS.contains(&name.as_str()) => {
                        *text = keyed_hash(key, text);
                    }
                    _ => redact(value, key),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, key)),
        _ => {}
    }
}

/// `hmac-sha256:` and the first 16 bytes of HMAC-SHA256(`key`, `text`) in hex: the same
/// text gives the same hash under one key, and nobody without the key can test a guess.
fn keyed_hash(key: &[u8], text: &str) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(text.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("hmac-sha256:{}", lower_hex(&digest[..16]))
}

/// The key of the file holding `batch`'s events of `day`.
pub fn file_key(day: NaiveDate, batch: i64) -> String {
    format!("analytics/events/dt={day}/part-{batch:012}.parquet")
}

/// A batch's files as they are built: the batch's events go in a few at a time, in the
/// order they came, and come out as one Parquet file for each day they happened on. Each
/// [`BatchFiles::add`] writes one row group a day and encodes it at once, so what is held
/// meanwhile is the compressed files and one group's columns, whatever the batch's size.
pub struct BatchFiles {
    batch: i64,
    schema: Arc<Schema>,
    days: BTreeMap<NaiveDate, ArrowWriter<Vec<u8>>>,
}

impl BatchFiles {
    /// The files of `batch`, empty.
    pub fn new(batch: i64) -> Self {
        BatchFiles {
            batch,
            schema: schema(),
            days: BTreeMap::new(),
        }
    }

    /// Writes `events` (at most [`ROWS_PER_GROUP`] to keep groups that size) as a row group
    /// of each day's file.
    ///
    /// # Errors
    /// When the Parquet writer fails.
    pub fn add(&mut self, events: &[ArchivedEvent]) -> Result<(), ParquetError> {
        let mut days: Vec<NaiveDate> = events
            .iter()
            .map(|event| event.occurred_at.date_naive())
            .collect();
        days.sort_unstable();
        days.dedup();
        for day in days {
            let of_day: Vec<&ArchivedEvent> = events
                .iter()
                .filter(|event| event.occurred_at.date_naive() == day)
                .collect();
            let writer = match self.days.entry(day) {
                Entry::Occupied(writer) => writer.into_mut(),
                Entry::Vacant(entry) => {
                    let properties = WriterProperties::builder()
                        .set_compression(Compression::SNAPPY)
                        .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
                        .build();
                    entry.insert(ArrowWriter::try_new(
                        Vec::new(),
                        self.schema.clone(),
                        Some(properties),
                    )?)
                }
            };
            writer.write(&record_batch(&self.schema, &of_day)?)?;
            // Encoded and compressed now, so that only this group's columns were ever held.
            writer.flush()?;
        }
        Ok(())
    }

    /// The files, `(key, bytes)`, in the order of their days.
    ///
    /// # Errors
    /// When the Parquet writer fails.
    pub fn finish(self) -> Result<Vec<(String, Vec<u8>)>, ParquetError> {
        self.days
            .into_iter()
            .map(|(day, writer)| Ok((file_key(day, self.batch), writer.into_inner()?)))
            .collect()
    }
}

/// The columns of every file.
fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new(
            "occurred_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("aggregate_id", DataType::Utf8, false),
        Field::new("aggregate_version", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, false),
        Field::new("trace_id", DataType::Utf8, true),
    ]))
}

/// Rows written to a file at a time, each a row group: a batch is read and written in
/// groups this large.
pub const ROWS_PER_GROUP: usize = 1000;

fn record_batch(
    schema: &Arc<Schema>,
    events: &[&ArchivedEvent],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let column = |text: fn(&ArchivedEvent) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            events.iter().map(|event| text(event)),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        column(|event| &event.event_id),
        column(|event| &event.event_type),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                events
                    .iter()
                    .map(|event| event.occurred_at.timestamp_micros()),
            )
            .with_timezone("UTC"),
        ),
        column(|event| &event.aggregate_id),
        Arc::new(Int64Array::from_iter_values(
            events.iter().map(|event| event.aggregate_version),
        )),
        column(|event| &event.payload),
        Arc::new(StringArray::from_iter(
            events.iter().map(|event| event.trace_id.as_deref()),
        )),
    ];
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader as _, SerializedFileReader};
    use serde_json::json;

    use super::*;

    /// `events` (one whole batch) as the archiver writes them, a group at a time.
    fn files(batch: i64, events: &[ArchivedEvent]) -> Result<Vec<(String, Vec<u8>)>, ParquetError> {
        let mut files = BatchFiles::new(batch);
        for group in events.chunks(ROWS_PER_GROUP) {
            files.add(group)?;
        }
        files.finish()
    }

    #[test]
    fn names_and_emails_are_hashed_with_the_key_and_secrets_and_free_text_dropped() {
        let mut payload = json!({"user_registered": {
            "user_id": "u1", "email": "ann@example.org", "full_name": "Ann Lee",
            "role": "customer"}});
        let original = payload.clone();
        redact(&mut payload, b"key one");
        let fields = &payload["user_registered"];
        assert_eq!(fields["user_id"], "u1");
        assert_eq!(fields["role"], "customer");
        let hashed = fields["email"].as_str().unwrap();
        assert!(hashed.starts_with("hmac-sha256:") && !hashed.contains("ann"));
        assert_ne!(
            fields["full_name"],
            original["user_registered"]["full_name"]
        );
        // Stable under one key (joins work), different under another.
        let mut again = original.clone();
        redact(&mut again, b"key one");
        assert_eq!(again, payload);
        let mut other = original;
        redact(&mut other, b"key two");
        assert_ne!(
            other["user_registered"]["email"],
            payload["user_registered"]["email"]
        );

        let mut secrets = json!({"verification_requested": {"code": "123456", "token": "t",
            "user_id": "u1"}, "review_created": {"comment": "Ann was great, call 0170 123"},
            "cleaner_updated": {"bio": "I live at Torstrasse 1", "rating_avg": 4.5}});
        redact(&mut secrets, b"key");
        let text = secrets.to_string();
        for gone in ["123456", "\"t\"", "Ann was", "Torstrasse"] {
            assert!(!text.contains(gone), "{gone} is in {text}");
        }
        assert_eq!(secrets["cleaner_updated"]["rating_avg"], 4.5);
    }

    fn event(id: &str, at: &str) -> ArchivedEvent {
        ArchivedEvent {
            event_id: id.to_owned(),
            event_type: "booking.created".to_owned(),
            occurred_at: at.parse().unwrap(),
            aggregate_id: "b1".to_owned(),
            aggregate_version: 1,
            payload: "{}".to_owned(),
            trace_id: None,
        }
    }

    #[test]
    fn a_batch_is_one_file_a_day_named_by_day_and_batch_the_same_each_time() {
        let events = [
            event("e1", "2026-12-06T23:59:59Z"),
            event("e2", "2026-12-07T00:00:00Z"),
            event("e3", "2026-12-07T08:00:00Z"),
        ];
        let written = files(42, &events).unwrap();
        let keys: Vec<&str> = written.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "analytics/events/dt=2026-12-06/part-000000000042.parquet",
                "analytics/events/dt=2026-12-07/part-000000000042.parquet"
            ]
        );
        let rows = |bytes: &Vec<u8>| {
            SerializedFileReader::new(bytes::Bytes::from(bytes.clone()))
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows()
        };
        assert_eq!(rows(&written[0].1), 1);
        assert_eq!(rows(&written[1].1), 2);
        assert_eq!(
            files(42, &events).unwrap(),
            written,
            "written again, the same"
        );
    }

    #[test]
    fn a_large_batch_is_written_a_row_group_at_a_time() {
        let events: Vec<ArchivedEvent> = (0..2500)
            .map(|n| event(&format!("e{n}"), "2026-12-07T08:00:00Z"))
            .collect();
        let written = files(7, &events).unwrap();
        assert_eq!(written.len(), 1);
        let reader = SerializedFileReader::new(bytes::Bytes::from(written[0].1.clone())).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|group| group.num_rows())
            .collect();
        assert_eq!(groups, [1000, 1000, 500]);
    }
}

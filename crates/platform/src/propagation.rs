//! W3C trace context (`traceparent`, `tracestate`) in and out of HTTP headers, tonic
//! metadata and AMQP headers: the one place where a trace crosses a process boundary.

use std::collections::HashMap;

use lapin::types::{AMQPValue, FieldTable, ShortString};
use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the trace described by `headers`, if they carry one.
pub fn set_parent_from_http(span: &Span, headers: &http::HeaderMap) {
    set_parent(span, &HttpCarrier(headers));
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_into_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    for (key, value) in current_context_fields() {
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            continue;
        };
        if let Ok(value) = value.parse() {
            metadata.insert(key, value);
        }
    }
}

/// Writes the current span's trace context into AMQP message headers.
pub fn inject_into_amqp(headers: &mut FieldTable) {
    for (key, value) in current_context_fields() {
        headers.insert(ShortString::from(key), AMQPValue::LongString(value.into()));
    }
}

/// Makes `span` a child of the trace carried by an AMQP message's headers.
pub fn set_parent_from_amqp(span: &Span, headers: Option<&FieldTable>) {
    let Some(headers) = headers else { return };
    let fields: HashMap<String, String> = headers
        .inner()
        .iter()
        .filter_map(|(key, value)| {
            let text = match value {
                AMQPValue::LongString(text) => text.to_string(),
                AMQPValue::ShortString(text) => text.to_string(),
                _ => return None,
            };
            Some((key.to_string(), text))
        })
        .collect();
    set_parent(span, &fields);
}

/// Returns the current span's `traceparent`, to store beside a deferred message (outbox).
pub fn current_traceparent() -> Option<String> {
    current_context_fields().remove("traceparent")
}

/// Makes `span` a child of the trace a stored `traceparent` describes.
pub fn set_parent_from_traceparent(span: &Span, traceparent: &str) {
    let fields = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    set_parent(span, &fields);
}

fn current_context_fields() -> HashMap<String, String> {
    let context = Span::current().context();
    let mut fields = HashMap::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut FieldsInjector(&mut fields));
    });
    fields
}

fn set_parent(span: &Span, carrier: &dyn Extractor) {
    let parent: Context = global::get_text_map_propagator(|propagator| propagator.extract(carrier));
    // A span that was already started cannot be re-parented; that is a programming error we
    // would rather log than crash on.
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(?error, "cannot set parent trace context");
    }
}

struct FieldsInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for FieldsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct HttpCarrier<'a>(&'a http::HeaderMap);

impl Extractor for HttpCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

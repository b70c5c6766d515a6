//! W3C trace context (`traceparent`, `tracestate`) in and out of HTTP headers, tonic
//! metadata and AMQP headers: the one place where a trace crosses a process boundary.

use std::collections::HashMap;

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

/// Returns the current span's `traceparent`, to store beside a deferred message (outbox).
pub fn current_traceparent() -> Option<String> {
    current_context_fields().remove("traceparent")
}

/// Whether a stored `traceparent` belongs to a sampled trace (flag bit 0); spans of an
/// unsampled trace are never recorded, so they need not be built.
pub fn is_sampled(traceparent: &str) -> bool {
    traceparent
        .rsplit('-')
        .next()
        .and_then(|flags| u8::from_str_radix(flags, 16).ok())
        .is_some_and(|flags| flags & 1 == 1)
}

/// Makes `span` a child of the trace a stored `traceparent` describes.
pub fn set_parent_from_traceparent(span: &Span, traceparent: &str) {
    let fields = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    set_parent(span, &fields);
}

/// The current span's trace context as text fields (`traceparent`, `tracestate`), for any
/// carrier: gRPC metadata, AMQP headers, an outbox row.
pub fn current_context_fields() -> HashMap<String, String> {
    let context = Span::current().context();
    let mut fields = HashMap::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut FieldsInjector(&mut fields));
    });
    fields
}

/// Makes `span` a child of the trace context `carrier` holds.
pub fn set_parent(span: &Span, carrier: &dyn Extractor) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampled_flag_is_read_from_the_last_field() {
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
        assert!(is_sampled(&format!("{trace}-01")));
        assert!(is_sampled(&format!("{trace}-03")));
        assert!(!is_sampled(&format!("{trace}-00")));
        assert!(!is_sampled(&format!("{trace}-02")));
        assert!(!is_sampled(&format!("{trace}-zz")));
        assert!(!is_sampled(""));
    }
}

//! Trace context in AMQP message headers: the relay writes it, the consumer continues it.

use std::collections::HashMap;

use lapin::types::{AMQPValue, FieldTable, ShortString};
use spruce_platform::propagation::{current_context_fields, set_parent};
pub(crate) use spruce_platform::propagation::{
    current_traceparent, is_sampled, set_parent_from_traceparent,
};
use tracing::Span;

/// Writes the current span's trace context into AMQP message headers.
pub(crate) fn inject_into_amqp(headers: &mut FieldTable) {
    for (key, value) in current_context_fields() {
        headers.insert(ShortString::from(key), AMQPValue::LongString(value.into()));
    }
}

/// Makes `span` a child of the trace carried by an AMQP message's headers.
pub(crate) fn set_parent_from_amqp(span: &Span, headers: Option<&FieldTable>) {
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

/// Writes a stored `traceparent` into AMQP message headers as it is.
pub(crate) fn traceparent_into_amqp(headers: &mut FieldTable, traceparent: &str) {
    headers.insert(
        ShortString::from("traceparent"),
        AMQPValue::LongString(traceparent.into()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_traceparent_goes_into_the_headers_unchanged() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let mut headers = FieldTable::default();
        traceparent_into_amqp(&mut headers, traceparent);
        let stored = headers.inner().get("traceparent");
        assert_eq!(
            stored,
            Some(&AMQPValue::LongString(traceparent.into())),
            "headers: {headers:?}"
        );
    }
}

//! Logs and traces: `tracing` everywhere, JSON lines with `trace_id` and `span_id` (or pretty
//! output on a terminal), and OTLP export of spans when an endpoint is configured.
//!
//! The OpenTelemetry layer is always installed, so trace ids exist and propagate across
//! services even when nothing is exported.

use std::{
    fmt,
    io::IsTerminal,
    sync::{Arc, OnceLock},
};

use opentelemetry::{global, trace::TraceContextExt, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use serde_json::{Map, Value};
use tracing::{Dispatch, Event, Subscriber, dispatcher::WeakDispatch, field::Field};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::LevelFilter,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::settings::{LogFormat, TelemetrySettings};

/// Flushes and shuts down the exporters when the service stops.
#[must_use = "dropping the guard loses spans that were not exported yet"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports what is buffered and stops the exporters.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("failed to flush traces: {error}");
        }
    }
}

/// Installs the global subscriber, tracer provider and W3C propagator for `service_name`.
///
/// # Errors
/// Fails when the OTLP exporter cannot be built or a subscriber is already installed.
pub fn init(
    service_name: &'static str,
    settings: &TelemetrySettings,
) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder().with_service_name(service_name).build();
    let endpoint = otlp_endpoint(settings);
    // Without an exporter nothing would read sampled spans: keep the ids (they still
    // propagate and appear in logs) but record nothing. With one, sample new traces at
    // `sample_ratio` and follow the caller's decision.
    let root_sampler = if endpoint.is_some() {
        Sampler::TraceIdRatioBased(settings.sample_ratio)
    } else {
        Sampler::AlwaysOff
    };
    let mut provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(Sampler::ParentBased(Box::new(root_sampler)));
    if let Some(endpoint) = &endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(service_name);

    // lapin warns about every returned message; the outbox relay handles those itself.
    let quiet = "lapin::returned_messages=error";
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{},{quiet}", settings.log_level)))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{quiet}")));
    let pretty = match settings.log_format {
        LogFormat::Pretty => true,
        LogFormat::Json => false,
        LogFormat::Auto => std::io::stdout().is_terminal(),
    };
    let dispatch_cell = Arc::new(OnceLock::new());
    let log_layer = if pretty {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .event_format(JsonWithTrace::new(service_name, Arc::clone(&dispatch_cell)))
            .boxed()
    };
    // The log level filters logs only: spans exist (and carry the trace across services)
    // whatever is logged.
    let subscriber = tracing_subscriber::registry()
        .with(log_layer.with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                // Per span, not per poll: a span's OpenTelemetry context is read where it
                // is needed (`Span::context`, for logs and propagation), so entering a span
                // need not make it current, nor time its busy and idle spells, nor name
                // the thread.
                .with_context_activation(false)
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_filter(LevelFilter::INFO),
        );
    let dispatch = Dispatch::new(subscriber);
    dispatch_cell.set(dispatch.downgrade()).ok();
    tracing::dispatcher::set_global_default(dispatch)?;
    if let Some(endpoint) = endpoint {
        tracing::info!(%endpoint, "exporting traces over otlp");
    }
    Ok(TelemetryGuard { provider })
}

/// Installs logging for tests: quiet unless `TEST_LOG` is set. Safe to call repeatedly.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let tracer = provider.tracer("tests");
        global::set_tracer_provider(provider);
        let registry =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        if std::env::var_os("TEST_LOG").is_some() {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_test_writer()
                        .with_filter(filter),
                )
                .try_init()
                .ok();
        } else {
            registry.try_init().ok();
        }
    });
}

fn otlp_endpoint(settings: &TelemetrySettings) -> Option<String> {
    let configured = if settings.otlp_endpoint.is_empty() {
        std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default()
    } else {
        settings.otlp_endpoint.clone()
    };
    (!configured.trim().is_empty()).then(|| configured.trim().to_owned())
}

/// Returns the W3C trace id of the current span, if it has one.
pub fn current_trace_id() -> Option<String> {
    trace_id_of(&tracing::Span::current())
}

/// The trace id of `span`, when it is part of a trace.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// One JSON object per line: time, level, message, fields, span name, trace and span ids.
struct JsonWithTrace {
    service_name: &'static str,
    /// The dispatcher this formatter is part of, set once it exists. The span's trace id is
    /// read through it: while an event is being dispatched, `Span::current()` cannot reach
    /// a scoped dispatcher.
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl JsonWithTrace {
    fn new(service_name: &'static str, dispatch: Arc<OnceLock<WeakDispatch>>) -> Self {
        JsonWithTrace {
            service_name,
            dispatch,
        }
    }

    fn trace_of(&self, span_id: &tracing::span::Id) -> Option<(String, String)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let context = tracing_opentelemetry::get_otel_context(span_id, &dispatch)?;
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| {
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        })
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = FieldCollector(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339()),
        );
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        line.insert(
            "service".into(),
            Value::String(self.service_name.to_owned()),
        );
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_owned()),
        );
        if let Some(message) = fields.0.remove("message") {
            line.insert("message".into(), message);
        }
        if !fields.0.is_empty() {
            line.insert("fields".into(), Value::Object(fields.0));
        }
        if let Some(span) = context.lookup_current() {
            line.insert("span".into(), Value::String(span.name().to_owned()));
            if let Some((trace_id, span_id)) = self.trace_of(&span.id()) {
                line.insert("trace_id".into(), Value::String(trace_id));
                line.insert("span_id".into(), Value::String(span_id));
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct FieldCollector(Map<String, Value>);

impl tracing::field::Visit for FieldCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_the_trace_and_span_ids() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let provider = SdkTracerProvider::builder().build();
        let cell = Arc::new(OnceLock::new());
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonWithTrace::new("spruce-test", Arc::clone(&cell)))
                    .with_writer(move || writer.clone()),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let dispatch = Dispatch::new(subscriber);
        cell.set(dispatch.downgrade()).unwrap();
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            tracing::info!(answer = 42, "hello");
        });

        let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(output.trim()).unwrap();
        assert_eq!(line["message"], "hello");
        assert_eq!(line["service"], "spruce-test");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"], "work");
        assert_eq!(line["fields"]["answer"], 42);
        assert_eq!(line["trace_id"].as_str().unwrap().len(), 32);
        assert_eq!(line["span_id"].as_str().unwrap().len(), 16);
    }
}

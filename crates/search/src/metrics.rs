//! Search's own metrics, beside the request histograms every service has.

use std::sync::LazyLock;

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntGauge, register_gauge, register_histogram,
    register_int_gauge,
};

/// Cleaners in the read model.
pub static READ_MODEL_CLEANERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("search_read_model_cleaners", "cleaners in the read model")
        .expect("metric registered once")
});

/// Bookings the read model remembers (live ones, and ended ones for a while).
pub static READ_MODEL_BOOKINGS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "search_read_model_bookings",
        "bookings the read model remembers"
    )
    .expect("metric registered once")
});

/// How long the last snapshot took to stream and index.
pub static SNAPSHOT_LOAD_SECONDS: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(
        "search_snapshot_load_seconds",
        "time the last snapshot from core took to stream and index"
    )
    .expect("metric registered once")
});

/// Seconds from an event's occurrence in core to its application here.
pub static EVENT_LAG_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        HistogramOpts::new(
            "search_event_lag_seconds",
            "time from an event's occurrence to its application to the read model"
        )
        .buckets(vec![
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0
        ])
    )
    .expect("metric registered once")
});

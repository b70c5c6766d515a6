//! Core's own Prometheus metrics. `/metrics` serves them with the request histograms every
//! service has.

use std::sync::LazyLock;

use prometheus::{IntCounter, register_int_counter};

/// Card payments the provider declined: a rising rate means card testing (or a provider
/// problem), and the decline-rate alert reads it.
pub static PAYMENTS_DECLINED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("payments_declined_total", "card payments declined")
        .expect("metric registered once")
});

/// Card payments authorized, the decline rate's other half.
pub static PAYMENTS_AUTHORIZED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("payments_authorized_total", "card payments authorized")
        .expect("metric registered once")
});

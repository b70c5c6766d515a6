//! An exchange of the test's own (the `testing` feature, for dev-dependencies only).

use std::time::Duration;

use spruce_platform::settings::BusSettings;

/// Bus settings naming an exchange and queues of one test's own on the local broker, with
/// queues that expire two minutes after their last consumer; the exchange is deleted when
/// this is dropped, also when the test fails.
pub struct TestExchange {
    settings: BusSettings,
}

impl TestExchange {
    /// Names `spruce.test.<id>` and queues `test-<id>…`.
    pub fn new(id: &str) -> Self {
        TestExchange {
            settings: BusSettings {
                exchange: format!("spruce.test.{id}"),
                queue_prefix: format!("test-{id}"),
                queue_expires: Duration::from_secs(120),
                unrouted_expires: Duration::from_secs(120),
                ..BusSettings::default()
            },
        }
    }

    /// The settings that reach it.
    pub fn settings(&self) -> &BusSettings {
        &self.settings
    }
}

impl Drop for TestExchange {
    fn drop(&mut self) {
        let settings = self.settings.clone();
        spruce_testkit::run_aside(async move { crate::delete_exchange(&settings).await.ok() });
    }
}

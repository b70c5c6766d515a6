//! A test's database (the `testing` feature, for dev-dependencies only).

use spruce_platform::settings::DatabaseSettings;
use spruce_testkit::TestDb;

/// The settings that reach `database` on the local PostgreSQL, a few connections at most.
pub fn settings(database: &TestDb) -> DatabaseSettings {
    DatabaseSettings {
        name: database.name().to_owned(),
        max_connections: 5,
        ..DatabaseSettings::default()
    }
}

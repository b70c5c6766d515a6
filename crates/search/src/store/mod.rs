//! Search's own database (`spruce_search`): the duration model's versions, and Redis for
//! the customers' cached affinities.

use spruce_db::MigrationSource;

pub mod cache;
pub mod models;

/// Embedded migrations, applied by `spruce-search migrate` and at start in development.
pub const MIGRATIONS: &[MigrationSource] = &[
    (
        1,
        "model versions",
        include_str!("../../migrations/0001_model_versions.sql"),
    ),
    (
        2,
        "model bodies",
        include_str!("../../migrations/0002_model_bodies.sql"),
    ),
];

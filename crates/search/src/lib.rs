//! spruce-search: geo search, recommendations and the cleaning-duration model. In this
//! first version it runs the shared scaffolding (health, reflection, readiness, metrics) and
//! owns its database; `spruce.search.v1.SearchService` answers UNIMPLEMENTED until its read
//! model is built.

pub mod settings;
pub mod startup;

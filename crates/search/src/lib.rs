//! spruce-search: geo search, recommendations and the cleaning-duration model. In this
//! first version it runs the shared scaffolding (health, authentication of every call,
//! reflection where switched on, readiness, metrics) and owns its database; it serves no
//! `spruce.search.v1.SearchService` until its read model is built.

pub mod domain;
pub mod settings;
pub mod startup;

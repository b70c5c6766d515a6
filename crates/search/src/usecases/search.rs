//! Searches, batches of searches and recommendations over the live read model.

use std::sync::Arc;

use spruce_domain::reason::FieldError;
use spruce_platform::identity::{Principal, Role};

use crate::{
    domain::{
        index::{Page, SearchIndex},
        query::SearchQuery,
        recommend::{Recommendation, Recommendations, recommend},
    },
    error::SearchError,
    store::cache::AffinityCache,
    usecases::live::LiveModel,
};

/// The most queries one batch holds.
const MAX_BATCH: usize = 1_000;

/// Answers searches and recommendations from the live read model. Each answer is handed
/// to a `present` function under the model's read lock, so that nothing is copied out of
/// it but what the caller presents.
pub struct Searches {
    live: Arc<LiveModel>,
    cache: AffinityCache,
}

impl Searches {
    /// Searches `live`, with customers' affinities cached in `cache`.
    pub fn new(live: Arc<LiveModel>, cache: AffinityCache) -> Self {
        Searches { live, cache }
    }

    /// One page of `query`'s answer, for any signed-in caller.
    ///
    /// # Errors
    /// Unauthenticated without a caller; not ready until the snapshot is in.
    pub fn search<R>(
        &self,
        principal: Option<&Principal>,
        query: &SearchQuery,
        present: impl FnOnce(&SearchIndex, &Page) -> R,
    ) -> Result<R, SearchError> {
        principal.ok_or(SearchError::Unauthenticated)?;
        self.live.read(|model| {
            let index = model.index();
            present(index, &index.search(query))
        })
    }

    /// Many searches under one read of the model, for services only, off the async
    /// workers: a batch of a thousand takes a core for a while. Each item is read with
    /// `parse`; one that does not parse answers its own error.
    ///
    /// # Errors
    /// Unauthenticated, permission denied for users, a validation error for an empty batch
    /// or one over 1,000 queries; not ready until the snapshot is in.
    pub async fn search_batch<T, R>(
        &self,
        principal: Option<&Principal>,
        items: Vec<T>,
        parse: fn(&T) -> Result<SearchQuery, SearchError>,
        present: fn(&SearchIndex, &Page) -> R,
    ) -> Result<Vec<Result<R, SearchError>>, SearchError>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        match principal {
            // The authentication layer lets only the services in SERVICE_RPCS call this.
            Some(Principal::Service(_)) => {}
            Some(Principal::User(_)) => {
                return Err(SearchError::PermissionDenied(
                    "only services search in batches",
                ));
            }
            None => return Err(SearchError::Unauthenticated),
        }
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(SearchError::Validation(vec![FieldError::new(
                "queries",
                "must hold 1 to 1000 queries",
            )]));
        }
        let live = self.live.clone();
        tokio::task::spawn_blocking(move || {
            let queries: Vec<_> = items.iter().map(parse).collect();
            live.read(|model| {
                let index = model.index();
                queries
                    .into_iter()
                    .map(|query| query.map(|query| present(index, &index.search(&query))))
                    .collect()
            })
        })
        .await
        .map_err(|error| SearchError::Unexpected(error.into()))?
    }

    /// Recommendations for the signed-in customer at `wanted`'s point, each with the
    /// sentence that says why.
    ///
    /// # Errors
    /// Unauthenticated, permission denied for anyone but a customer; not ready until the
    /// snapshot is in.
    pub async fn recommend<R>(
        &self,
        principal: Option<&Principal>,
        wanted: Recommendations,
        present: impl FnOnce(&SearchIndex, &[(Recommendation, String)]) -> R,
    ) -> Result<R, SearchError> {
        let customer = match principal {
            Some(Principal::User(caller)) if caller.role == Role::Customer => caller.user_id,
            Some(_) => {
                return Err(SearchError::PermissionDenied(
                    "recommendations are for customers",
                ));
            }
            None => return Err(SearchError::Unauthenticated),
        };
        let affinities = match self.cache.get(customer).await {
            Some(cached) => cached,
            None => {
                let computed = self
                    .live
                    .read(|model| model.history().affinities(customer))?;
                self.cache.put(customer, &computed).await;
                computed
            }
        };
        self.live.read(|model| {
            let index = model.index();
            let described: Vec<_> = recommend(index, &affinities, wanted.at, wanted.limit)
                .into_iter()
                .filter_map(|item| {
                    let reason = item.describe(index)?;
                    Some((item, reason))
                })
                .collect();
            present(index, &described)
        })
    }
}

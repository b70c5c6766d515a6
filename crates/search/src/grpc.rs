//! `spruce.search.v1.SearchService` over tonic.

use std::sync::Arc;

use chrono::Utc;
use spruce_platform::identity::Principal;
use spruce_proto::search::v1::{
    SearchCleanersRequest, SearchCleanersResponse, search_service_server::SearchService,
};
use tonic::{Request, Response, Status};

use crate::{domain::query::SearchQuery, error::SearchError, live::LiveModel, wire};

/// Answers searches from the live read model.
pub struct SearchApi {
    live: Arc<LiveModel>,
}

impl SearchApi {
    /// Searches `live`.
    pub fn new(live: Arc<LiveModel>) -> Self {
        SearchApi { live }
    }

    fn search(
        &self,
        principal: Option<&Principal>,
        request: &SearchCleanersRequest,
    ) -> Result<SearchCleanersResponse, SearchError> {
        principal.ok_or(SearchError::Unauthenticated)?;
        let raw = wire::raw_query(request).map_err(|field| SearchError::Validation(vec![field]))?;
        let query = SearchQuery::parse(&raw, Utc::now()).map_err(SearchError::Validation)?;
        self.live.read(|model| {
            let index = model.index();
            let page = index.search(&query);
            SearchCleanersResponse {
                cleaners: page
                    .hits
                    .iter()
                    .filter_map(|hit| index.get(hit.id).map(|cleaner| wire::hit(hit, cleaner)))
                    .collect(),
                next_cursor: page.next.map(wire::encode_cursor).unwrap_or_default(),
            }
        })
    }
}

#[tonic::async_trait]
impl SearchService for SearchApi {
    async fn search_cleaners(
        &self,
        request: Request<SearchCleanersRequest>,
    ) -> Result<Response<SearchCleanersResponse>, Status> {
        let response = self.search(Principal::of(&request), request.get_ref())?;
        Ok(Response::new(response))
    }
}

//! `spruce.search.v1.SearchService` over tonic: wire in, use cases, wire out. No logic.

use std::sync::Arc;

use chrono::Utc;
use spruce_domain::pricing::CURRENCY;
use spruce_platform::identity::Principal;
use spruce_proto::search::v1::{
    EstimateDurationRequest, EstimateDurationResponse, RecommendCleanersRequest,
    RecommendCleanersResponse, Recommendation as WireRecommendation, RetrainModelRequest,
    RetrainModelResponse, SearchCleanersBatchRequest, SearchCleanersBatchResponse,
    SearchCleanersBatchResult, SearchCleanersRequest, SearchCleanersResponse,
    search_service_server::SearchService,
};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        index::{Hit, Page, SearchIndex},
        query::SearchQuery,
        recommend::Recommendations,
    },
    error::SearchError,
    usecases::{live::LiveModel, models::Models, search::Searches},
    wire,
};

/// The search service's RPCs.
pub struct SearchApi {
    live: Arc<LiveModel>,
    searches: Searches,
    models: Arc<Models>,
}

impl SearchApi {
    /// Serves `searches` and `models` over `live`.
    pub fn new(live: Arc<LiveModel>, searches: Searches, models: Arc<Models>) -> Self {
        SearchApi {
            live,
            searches,
            models,
        }
    }
}

#[tonic::async_trait]
impl SearchService for SearchApi {
    async fn search_cleaners(
        &self,
        request: Request<SearchCleanersRequest>,
    ) -> Result<Response<SearchCleanersResponse>, Status> {
        let query = parse_query(request.get_ref())?;
        let response = self
            .searches
            .search(Principal::of(&request), &query, page)?;
        Ok(Response::new(response))
    }

    async fn search_cleaners_batch(
        &self,
        request: Request<SearchCleanersBatchRequest>,
    ) -> Result<Response<SearchCleanersBatchResponse>, Status> {
        let principal = Principal::of(&request).cloned();
        let answers = self
            .searches
            .search_batch(
                principal.as_ref(),
                request.into_inner().queries,
                parse_query,
                page,
            )
            .await?;
        Ok(Response::new(SearchCleanersBatchResponse {
            results: answers
                .into_iter()
                .map(|answer| match answer {
                    Ok(response) => SearchCleanersBatchResult {
                        response: Some(response),
                        error: String::new(),
                    },
                    Err(error) => SearchCleanersBatchResult {
                        response: None,
                        error: error.to_string(),
                    },
                })
                .collect(),
        }))
    }

    async fn estimate_duration(
        &self,
        request: Request<EstimateDurationRequest>,
    ) -> Result<Response<EstimateDurationResponse>, Status> {
        let job = wire::job(request.get_ref()).map_err(SearchError::Validation)?;
        let estimate = self
            .models
            .estimate(&self.live, Principal::of(&request), &job)?;
        Ok(Response::new(EstimateDurationResponse {
            estimated_duration_min: estimate.minutes,
            price_cents: estimate.price_cents,
            currency: CURRENCY.to_owned(),
            model_version: estimate.model_version,
            estimated_by: estimate.estimated_by.as_str().to_owned(),
        }))
    }

    async fn retrain_model(
        &self,
        request: Request<RetrainModelRequest>,
    ) -> Result<Response<RetrainModelResponse>, Status> {
        let outcome = self.models.retrain_for(Principal::of(&request)).await?;
        let count = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
        Ok(Response::new(RetrainModelResponse {
            version: outcome.version,
            promoted: outcome.promoted,
            holdout_mae_min: outcome.holdout_mae_min,
            current_mae_min: outcome.current_mae_min,
            refusal: outcome.refusal.clone().unwrap_or_default(),
            rows: count(outcome.rows),
            holdout_rows: count(outcome.holdout_rows),
            active_version: outcome.active_version.unwrap_or(0),
        }))
    }

    async fn recommend_cleaners(
        &self,
        request: Request<RecommendCleanersRequest>,
    ) -> Result<Response<RecommendCleanersResponse>, Status> {
        let wanted = {
            let wire = request.get_ref();
            Recommendations::check(wire.lat, wire.lng, wire.limit)
                .map_err(SearchError::Validation)?
        };
        let response = self
            .searches
            .recommend(Principal::of(&request), wanted, |index, described| {
                RecommendCleanersResponse {
                    recommendations: described
                        .iter()
                        .filter_map(|(item, reason)| {
                            let cleaner = index.get(item.id)?;
                            let hit = Hit {
                                id: item.id,
                                distance_km: item.distance_km,
                                score: item.score,
                            };
                            Some(WireRecommendation {
                                cleaner: Some(wire::hit(&hit, cleaner)),
                                reason: reason.clone(),
                            })
                        })
                        .collect(),
                }
            })
            .await?;
        Ok(Response::new(response))
    }
}

/// A wire query, checked.
fn parse_query(request: &SearchCleanersRequest) -> Result<SearchQuery, SearchError> {
    let raw = wire::raw_query(request).map_err(|field| SearchError::Validation(vec![field]))?;
    SearchQuery::parse(&raw, Utc::now()).map_err(SearchError::Validation)
}

/// One page of hits on the wire.
fn page(index: &SearchIndex, page: &Page) -> SearchCleanersResponse {
    SearchCleanersResponse {
        cleaners: page
            .hits
            .iter()
            .filter_map(|hit| index.get(hit.id).map(|cleaner| wire::hit(hit, cleaner)))
            .collect(),
        next_cursor: page.next.map(wire::encode_cursor).unwrap_or_default(),
    }
}

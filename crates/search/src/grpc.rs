//! `spruce.search.v1.SearchService` over tonic.

use std::sync::Arc;

use chrono::Utc;
use spruce_platform::{
    identity::{Principal, Role},
    pricing::{
        CURRENCY, DEFAULT_HOURLY_RATE_CENTS, Home, billable_minutes, price_cents,
        rule_of_thumb_minutes,
    },
    reason::FieldError,
};
use spruce_proto::search::v1::{
    EstimateDurationRequest, EstimateDurationResponse, RecommendCleanersRequest,
    RecommendCleanersResponse, Recommendation as WireRecommendation, RetrainModelRequest,
    RetrainModelResponse, SearchCleanersBatchRequest, SearchCleanersBatchResponse,
    SearchCleanersBatchResult, SearchCleanersRequest, SearchCleanersResponse,
    search_service_server::SearchService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    cache::AffinityCache,
    domain::{
        cleaner::{Cleaner, Services},
        duration::Job,
        index::{Hit, SearchIndex},
        query::SearchQuery,
        readmodel::ReadModel,
        recommend::{Reason, Recommendation, recommend},
    },
    error::SearchError,
    live::LiveModel,
    models::Models,
    wire,
};

/// The most recommendations one call returns, and how many when none is asked.
const MAX_RECOMMENDATIONS: u32 = 50;
const DEFAULT_RECOMMENDATIONS: u32 = 10;

/// Answers searches and recommendations from the live read model, and retrains the
/// duration model.
pub struct SearchApi {
    live: Arc<LiveModel>,
    cache: AffinityCache,
    models: Arc<Models>,
}

impl SearchApi {
    /// Serves `live`, with affinities cached in `cache`, and `models`.
    pub fn new(live: Arc<LiveModel>, cache: AffinityCache, models: Arc<Models>) -> Self {
        SearchApi {
            live,
            cache,
            models,
        }
    }

    fn estimate(
        &self,
        principal: Option<&Principal>,
        request: &EstimateDurationRequest,
    ) -> Result<EstimateDurationResponse, SearchError> {
        principal.ok_or(SearchError::Unauthenticated)?;
        let mut errors = Vec::new();
        let service = Services::parse([request.service.as_str()]);
        if service.is_none() {
            errors.push(FieldError::new(
                "service",
                "must be standard, deep, move_out or office",
            ));
        }
        if request.size_m2 == 0 || request.size_m2 > 10_000 {
            errors.push(FieldError::new("size_m2", "must be from 1 to 10000"));
        }
        if request.bedrooms > 50 {
            errors.push(FieldError::new("bedrooms", "must be at most 50"));
        }
        if request.bathrooms > 50 {
            errors.push(FieldError::new("bathrooms", "must be at most 50"));
        }
        let cleaner_id = if request.cleaner_id.is_empty() {
            None
        } else {
            match request.cleaner_id.parse::<Uuid>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.push(FieldError::new("cleaner_id", "must be a UUID"));
                    None
                }
            }
        };
        let (Some(service), true) = (service, errors.is_empty()) else {
            return Err(SearchError::Validation(errors));
        };
        let rate = match cleaner_id {
            Some(id) => self
                .live
                .read(|model| {
                    model
                        .index()
                        .get(id)
                        .map(|cleaner| cleaner.hourly_rate_cents)
                })?
                .ok_or(SearchError::NotFound)?,
            None => DEFAULT_HOURLY_RATE_CENTS,
        };
        // Until a model exists, the rule of thumb core books with answers.
        let (minutes, model_version, estimated_by) = match self.models.active() {
            Some(active) => (
                billable_minutes(active.model.predict(&Job {
                    service,
                    size_m2: f64::from(request.size_m2),
                    bedrooms: f64::from(request.bedrooms),
                    bathrooms: f64::from(request.bathrooms),
                    has_pets: request.has_pets,
                    cleaner_id,
                })),
                active.version,
                "model",
            ),
            None => (
                rule_of_thumb_minutes(
                    &request.service,
                    Home {
                        size_m2: request.size_m2,
                        bedrooms: request.bedrooms,
                        bathrooms: request.bathrooms,
                        has_pets: request.has_pets,
                    },
                ),
                0,
                "rule_of_thumb",
            ),
        };
        Ok(EstimateDurationResponse {
            estimated_duration_min: minutes,
            price_cents: price_cents(minutes, rate),
            currency: CURRENCY.to_owned(),
            model_version,
            estimated_by: estimated_by.to_owned(),
        })
    }

    async fn retrain(
        &self,
        principal: Option<&Principal>,
    ) -> Result<RetrainModelResponse, SearchError> {
        match principal {
            // The authentication layer lets only the services in SERVICE_RPCS call this.
            Some(Principal::Service(_)) => {}
            Some(Principal::User(caller)) if caller.role == Role::Admin => {}
            Some(Principal::User(_)) => {
                return Err(SearchError::PermissionDenied(
                    "only admins retrain the model",
                ));
            }
            None => return Err(SearchError::Unauthenticated),
        }
        let outcome = self.models.retrain().await?;
        let count = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
        Ok(RetrainModelResponse {
            version: outcome.version,
            promoted: outcome.promoted,
            holdout_mae_min: outcome.holdout_mae_min,
            current_mae_min: outcome.current_mae_min,
            refusal: outcome.refusal.clone().unwrap_or_default(),
            rows: count(outcome.rows),
            holdout_rows: count(outcome.holdout_rows),
            active_version: outcome.active_version.unwrap_or(0),
        })
    }

    fn search(
        &self,
        principal: Option<&Principal>,
        request: &SearchCleanersRequest,
    ) -> Result<SearchCleanersResponse, SearchError> {
        principal.ok_or(SearchError::Unauthenticated)?;
        let query = parse_query(request)?;
        self.live.read(|model| answer(model, &query))
    }

    /// Many searches under one read of the model, off the async workers: a batch of a
    /// thousand takes a core for a while.
    async fn search_batch(
        &self,
        principal: Option<&Principal>,
        request: SearchCleanersBatchRequest,
    ) -> Result<SearchCleanersBatchResponse, SearchError> {
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
        if request.queries.is_empty() || request.queries.len() > 1_000 {
            return Err(SearchError::Validation(vec![FieldError::new(
                "queries",
                "must hold 1 to 1000 queries",
            )]));
        }
        let live = self.live.clone();
        tokio::task::spawn_blocking(move || {
            let queries: Vec<_> = request.queries.iter().map(parse_query).collect();
            live.read(|model| SearchCleanersBatchResponse {
                results: queries
                    .iter()
                    .map(|query| match query {
                        Ok(query) => SearchCleanersBatchResult {
                            response: Some(answer(model, query)),
                            error: String::new(),
                        },
                        Err(error) => SearchCleanersBatchResult {
                            response: None,
                            error: error.to_string(),
                        },
                    })
                    .collect(),
            })
        })
        .await
        .map_err(|error| SearchError::Unexpected(error.into()))?
    }

    async fn recommend(
        &self,
        principal: Option<&Principal>,
        request: &RecommendCleanersRequest,
    ) -> Result<RecommendCleanersResponse, SearchError> {
        let customer = match principal {
            Some(Principal::User(caller)) if caller.role == Role::Customer => caller.user_id,
            Some(_) => {
                return Err(SearchError::PermissionDenied(
                    "recommendations are for customers",
                ));
            }
            None => return Err(SearchError::Unauthenticated),
        };
        let mut errors = Vec::new();
        if !(-90.0..=90.0).contains(&request.lat) {
            errors.push(FieldError::new("lat", "must be from -90 to 90"));
        }
        if !(-180.0..=180.0).contains(&request.lng) {
            errors.push(FieldError::new("lng", "must be from -180 to 180"));
        }
        if request.limit > MAX_RECOMMENDATIONS {
            errors.push(FieldError::new("limit", "must be from 1 to 50"));
        }
        if !errors.is_empty() {
            return Err(SearchError::Validation(errors));
        }
        let limit = if request.limit == 0 {
            DEFAULT_RECOMMENDATIONS
        } else {
            request.limit
        } as usize;
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
            RecommendCleanersResponse {
                recommendations: recommend(index, &affinities, (request.lat, request.lng), limit)
                    .iter()
                    .filter_map(|item| {
                        let cleaner = index.get(item.id)?;
                        Some(WireRecommendation {
                            cleaner: Some(wire::hit(
                                &Hit {
                                    id: item.id,
                                    distance_km: item.distance_km,
                                    score: item.score,
                                },
                                cleaner,
                            )),
                            reason: reason(index, item, cleaner),
                        })
                    })
                    .collect(),
            }
        })
    }
}

/// Says why a cleaner is recommended, in words fit for the app.
fn reason(index: &SearchIndex, item: &Recommendation, cleaner: &Cleaner) -> String {
    let name = &cleaner.full_name;
    match item.reason {
        Reason::AlsoBooked(because) => match index.get(because) {
            Some(theirs) => format!(
                "Customers who booked {} also booked {name}",
                theirs.full_name
            ),
            None => format!("Customers with cleaners like yours also booked {name}"),
        },
        Reason::BookedBefore => format!("You booked {name} before"),
        Reason::WellRatedNearby => match cleaner.mean_rating() {
            Some(rating) => format!(
                "Rated {rating:.1} from {} reviews, {:.1} km away",
                cleaner.rating_count, item.distance_km
            ),
            None => format!("New on Spruce, {:.1} km away", item.distance_km),
        },
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

    async fn search_cleaners_batch(
        &self,
        request: Request<SearchCleanersBatchRequest>,
    ) -> Result<Response<SearchCleanersBatchResponse>, Status> {
        let principal = Principal::of(&request).cloned();
        Ok(Response::new(
            self.search_batch(principal.as_ref(), request.into_inner())
                .await?,
        ))
    }

    async fn estimate_duration(
        &self,
        request: Request<EstimateDurationRequest>,
    ) -> Result<Response<EstimateDurationResponse>, Status> {
        Ok(Response::new(
            self.estimate(Principal::of(&request), request.get_ref())?,
        ))
    }

    async fn retrain_model(
        &self,
        request: Request<RetrainModelRequest>,
    ) -> Result<Response<RetrainModelResponse>, Status> {
        Ok(Response::new(self.retrain(Principal::of(&request)).await?))
    }

    async fn recommend_cleaners(
        &self,
        request: Request<RecommendCleanersRequest>,
    ) -> Result<Response<RecommendCleanersResponse>, Status> {
        let response = self
            .recommend(Principal::of(&request), request.get_ref())
            .await?;
        Ok(Response::new(response))
    }
}

/// A wire query, checked.
fn parse_query(request: &SearchCleanersRequest) -> Result<SearchQuery, SearchError> {
    let raw = wire::raw_query(request).map_err(|field| SearchError::Validation(vec![field]))?;
    SearchQuery::parse(&raw, Utc::now()).map_err(SearchError::Validation)
}

/// One page of `query`'s answer from `model`.
fn answer(model: &ReadModel, query: &SearchQuery) -> SearchCleanersResponse {
    let index = model.index();
    let page = index.search(query);
    SearchCleanersResponse {
        cleaners: page
            .hits
            .iter()
            .filter_map(|hit| index.get(hit.id).map(|cleaner| wire::hit(hit, cleaner)))
            .collect(),
        next_cursor: page.next.map(wire::encode_cursor).unwrap_or_default(),
    }
}

//! A provider speaking a Stripe-style HTTP API: payment intents with manual capture,
//! capture and cancel, each call with an idempotency key, so a retry after a timeout or a
//! 5xx can never charge twice.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::{PaymentError, PaymentProvider, ProviderFuture};

/// Talks to `base_url` with `secret_key`.
#[derive(Clone)]
pub struct StripeProvider {
    client: reqwest::Client,
    base_url: String,
    secret_key: SecretString,
    retries: u32,
}

#[derive(Deserialize)]
struct Intent {
    id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ProviderError,
}

#[derive(Deserialize)]
struct ProviderError {
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    decline_code: String,
}

impl StripeProvider {
    /// Builds a client whose every call times out after `timeout` and is retried `retries`
    /// times on timeouts and 5xx.
    ///
    /// # Errors
    /// Fails when the HTTP client cannot be built.
    pub fn new(
        base_url: &str,
        secret_key: SecretString,
        timeout: Duration,
        retries: u32,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(StripeProvider {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key,
            retries,
        })
    }

    /// POSTs a form with an idempotency key, retrying transient failures with the same key.
    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<T, PaymentError> {
        let mut last_failure = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            let sent = self
                .client
                .post(format!("{}{path}", self.base_url))
                .bearer_auth(self.secret_key.expose_secret())
                .header("Idempotency-Key", idempotency_key)
                .form(form)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    last_failure = if error.is_timeout() {
                        "timed out".to_owned()
                    } else {
                        error.to_string()
                    };
                    tracing::warn!(attempt, path, failure = %last_failure, "payment provider call failed");
                    continue;
                }
            };
            let status = response.status();
            if status.is_server_error() {
                last_failure = format!("answered {status}");
                tracing::warn!(attempt, path, %status, "payment provider failed");
                continue;
            }
            if status.is_success() {
                return response.json::<T>().await.map_err(|error| {
                    PaymentError::Unavailable(format!("unreadable answer: {error}"))
                });
            }
            let body: Option<ErrorBody> = response.json().await.ok();
            return Err(refusal(status.as_u16(), body.map(|body| body.error)));
        }
        Err(PaymentError::Unavailable(last_failure))
    }
}

/// Turns a 4xx answer into what it means for the booking.
fn refusal(status: u16, error: Option<ProviderError>) -> PaymentError {
    match error {
        Some(error) if error.r#type == "card_error" || status == 402 => {
            let reason = if error.decline_code.is_empty() {
                error.code
            } else {
                error.decline_code
            };
            PaymentError::Declined(if reason.is_empty() {
                "card_declined".to_owned()
            } else {
                reason
            })
        }
        Some(error) if error.r#type == "invalid_request_error" => PaymentError::InvalidToken,
        _ => PaymentError::Unavailable(format!("answered {status}")),
    }
}

impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn authorize<'a>(
        &'a self,
        amount_cents: i64,
        currency: &'a str,
        token: &'a str,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            let form = [
                ("amount", amount_cents.to_string()),
                ("currency", currency.to_lowercase()),
                ("payment_method", token.to_owned()),
                ("capture_method", "manual".to_owned()),
                ("confirm", "true".to_owned()),
            ];
            let intent: Intent = self
                .post("/v1/payment_intents", &form, idempotency_key)
                .await?;
            Ok(intent.id)
        })
    }

    fn capture<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{reference}/capture");
            self.post::<Intent>(&path, &[], &format!("capture-{reference}"))
                .await
                .map(|_| ())
        })
    }

    fn release<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{reference}/cancel");
            self.post::<Intent>(&path, &[], &format!("cancel-{reference}"))
                .await
                .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    //! The adapter against a local HTTP stand-in for the provider.

    use std::sync::{Arc, Mutex};

    use axum::{
        Form, Json, Router, extract::State, http::HeaderMap, http::StatusCode, routing::post,
    };
    use serde_json::{Value, json};

    use super::*;

    /// What the stand-in saw and how it should answer the next calls.
    #[derive(Default)]
    struct Script {
        /// Answers to give in order; once used up, 200 with an intent.
        answers: Vec<(StatusCode, Value)>,
        /// Sleep before answering (to provoke a client timeout), for this many calls.
        slow_calls: usize,
        keys: Vec<String>,
        forms: Vec<Vec<(String, String)>>,
    }

    type Shared = Arc<Mutex<Script>>;

    async fn intents(
        State(script): State<Shared>,
        headers: HeaderMap,
        Form(form): Form<Vec<(String, String)>>,
    ) -> (StatusCode, Json<Value>) {
        let (slow, answer) = {
            let mut script = script.lock().unwrap();
            let key = headers
                .get("idempotency-key")
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default();
            script.keys.push(key);
            script.forms.push(form);
            let slow = script.slow_calls > 0;
            if slow {
                script.slow_calls -= 1;
            }
            let answer = if script.answers.is_empty() {
                (
                    StatusCode::OK,
                    json!({"id": "pi_123", "status": "requires_capture"}),
                )
            } else {
                script.answers.remove(0)
            };
            (slow, answer)
        };
        if slow {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        (answer.0, Json(answer.1))
    }

    async fn stand_in(script: Script) -> (StripeProvider, Shared) {
        let shared = Arc::new(Mutex::new(script));
        let router = Router::new()
            .route("/v1/payment_intents", post(intents))
            .route("/v1/payment_intents/{id}/capture", post(intents))
            .route("/v1/payment_intents/{id}/cancel", post(intents))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let provider = StripeProvider::new(
            &url,
            SecretString::from("sk_test_x"),
            Duration::from_millis(200),
            2,
        )
        .unwrap();
        (provider, shared)
    }

    #[tokio::test]
    async fn an_authorization_creates_a_manual_capture_intent() {
        let (provider, script) = stand_in(Script::default()).await;
        let reference = provider
            .authorize(4_500, "EUR", "pm_card_visa", "booking-1")
            .await
            .unwrap();
        assert_eq!(reference, "pi_123");
        let script = script.lock().unwrap();
        assert_eq!(script.keys, ["booking-1"]);
        let form = &script.forms[0];
        assert!(form.contains(&("capture_method".to_owned(), "manual".to_owned())));
        assert!(form.contains(&("amount".to_owned(), "4500".to_owned())));
        assert!(form.contains(&("currency".to_owned(), "eur".to_owned())));
    }

    #[tokio::test]
    async fn a_decline_names_its_reason() {
        let declined = json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}});
        let (provider, _) = stand_in(Script {
            answers: vec![(StatusCode::PAYMENT_REQUIRED, declined)],
            ..Script::default()
        })
        .await;
        let error = provider
            .authorize(100, "EUR", "pm_x", "k")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            PaymentError::Declined("insufficient_funds".to_owned())
        );
    }

    #[tokio::test]
    async fn a_bad_token_is_invalid() {
        let invalid =
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}});
        let (provider, _) = stand_in(Script {
            answers: vec![(StatusCode::BAD_REQUEST, invalid)],
            ..Script::default()
        })
        .await;
        assert_eq!(
            provider
                .authorize(100, "EUR", "pm_x", "k")
                .await
                .unwrap_err(),
            PaymentError::InvalidToken
        );
    }

    #[tokio::test]
    async fn server_errors_are_retried_with_the_same_idempotency_key() {
        let failure = (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"type": "api_error"}}),
        );
        let (provider, script) = stand_in(Script {
            answers: vec![failure.clone(), failure],
            ..Script::default()
        })
        .await;
        assert_eq!(
            provider
                .authorize(100, "EUR", "pm_x", "booking-7")
                .await
                .unwrap(),
            "pi_123"
        );
        assert_eq!(
            script.lock().unwrap().keys,
            ["booking-7", "booking-7", "booking-7"]
        );
    }

    #[tokio::test]
    async fn a_timeout_is_retried_and_then_reported_unavailable() {
        let (provider, script) = stand_in(Script {
            slow_calls: 1,
            ..Script::default()
        })
        .await;
        assert_eq!(
            provider
                .authorize(100, "EUR", "pm_x", "booking-8")
                .await
                .unwrap(),
            "pi_123"
        );
        assert_eq!(script.lock().unwrap().keys.len(), 2);

        let (provider, script) = stand_in(Script {
            slow_calls: 10,
            ..Script::default()
        })
        .await;
        let error = provider
            .authorize(100, "EUR", "pm_x", "booking-9")
            .await
            .unwrap_err();
        assert!(
            matches!(error, PaymentError::Unavailable(ref reason) if reason.contains("timed out")),
            "{error:?}"
        );
        assert_eq!(
            script.lock().unwrap().keys,
            ["booking-9", "booking-9", "booking-9"]
        );
    }

    #[tokio::test]
    async fn capture_and_release_use_their_own_idempotency_keys() {
        let (provider, script) = stand_in(Script::default()).await;
        provider.capture("pi_123").await.unwrap();
        provider.release("pi_456").await.unwrap();
        assert_eq!(
            script.lock().unwrap().keys,
            ["capture-pi_123", "cancel-pi_456"]
        );
    }
}

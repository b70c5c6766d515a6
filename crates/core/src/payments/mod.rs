//! Payments behind a provider trait: authorize when a booking is made, capture when it is
//! completed, release when it is cancelled.

mod stripe;

use std::{future::Future, pin::Pin};

pub use stripe::StripeProvider;

use uuid::Uuid;

/// A boxed future, so providers can be chosen at run time.
pub type ProviderFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PaymentError>> + Send + 'a>>;

/// Why a payment step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined; the reason is the provider's code (e.g. `insufficient_funds`).
    #[error("the payment was declined ({0})")]
    Declined(String),
    /// The token is not one the provider knows.
    #[error("the payment token is not valid")]
    InvalidToken,
    /// The provider did not answer in time or failed; the step may be retried.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

/// A payment processor.
pub trait PaymentProvider: Send + Sync {
    /// Returns the provider's name, stored with each payment.
    fn name(&self) -> &'static str;

    /// Reserves `amount_cents` on the card behind `token`; returns the provider's reference.
    /// The same `idempotency_key` never authorizes twice.
    fn authorize<'a>(
        &'a self,
        amount_cents: i64,
        currency: &'a str,
        token: &'a str,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, String>;

    /// Takes the reserved money.
    fn capture<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ()>;

    /// Gives the reservation back.
    fn release<'a>(&'a self, reference: &'a str) -> ProviderFuture<'a, ()>;
}

/// The provider for development and tests: it honours the well-known test tokens.
/// `tok_visa` authorizes, `tok_chargeDeclined` is declined (`card_declined`),
/// `tok_insufficientFunds` is declined (`insufficient_funds`); anything else is invalid.
#[derive(Debug, Default, Clone, Copy)]
pub struct FakeProvider;

impl PaymentProvider for FakeProvider {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn authorize<'a>(
        &'a self,
        _amount_cents: i64,
        _currency: &'a str,
        token: &'a str,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            match token {
                "tok_visa" => Ok(format!(
                    "fake_auth_{}",
                    Uuid::new_v5(&Uuid::NAMESPACE_OID, idempotency_key.as_bytes())
                )),
                "tok_chargeDeclined" => Err(PaymentError::Declined("card_declined".to_owned())),
                "tok_insufficientFunds" => {
                    Err(PaymentError::Declined("insufficient_funds".to_owned()))
                }
                _ => Err(PaymentError::InvalidToken),
            }
        })
    }

    fn capture<'a>(&'a self, _reference: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn release<'a>(&'a self, _reference: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fake_provider_honours_the_test_tokens() {
        let provider = FakeProvider;
        let first = provider
            .authorize(1_000, "EUR", "tok_visa", "key-1")
            .await
            .unwrap();
        let again = provider
            .authorize(1_000, "EUR", "tok_visa", "key-1")
            .await
            .unwrap();
        assert_eq!(
            first, again,
            "the same idempotency key gives the same authorization"
        );
        assert_eq!(
            provider
                .authorize(1_000, "EUR", "tok_chargeDeclined", "key-2")
                .await,
            Err(PaymentError::Declined("card_declined".to_owned()))
        );
        assert_eq!(
            provider
                .authorize(1_000, "EUR", "tok_insufficientFunds", "key-3")
                .await,
            Err(PaymentError::Declined("insufficient_funds".to_owned()))
        );
        assert_eq!(
            provider.authorize(1_000, "EUR", "tok_nope", "key-4").await,
            Err(PaymentError::InvalidToken)
        );
    }
}

//! The mobile mix: what the apps ask of the gateway, in the shares a day of traffic has
//! them. Search 45 %, recommendations 10 %, quotes 15 %, booking reads 15 %, bookings 10 %,
//! token refreshes 5 %, each request's transaction chosen by its sequence number so that
//! every hundred consecutive requests hold exactly those shares.

use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{Options, book_once, log_in, search_request, session, status_of};

/// Each transaction and its share of a hundred requests.
pub(crate) const SHARES: [(&str, u64); 6] = [
    ("search", 45),
    ("recommendations", 10),
    ("quote", 15),
    ("read-booking", 15),
    ("book", 10),
    ("refresh", 5),
];

/// A customer of the mix: logged in, with an address and a booking to read.
struct Shopper {
    token: String,
    booking: Vec<u8>,
    quote: Vec<u8>,
    address_id: String,
    booking_id: String,
}

/// A customer whose app refreshes its session: refresh tokens rotate, and one used twice
/// ends the session, so each is used by one request at a time.
struct Refresher {
    refresh_token: Mutex<String>,
}

/// The mix's customers and what it asks with.
pub(crate) struct Mix {
    client: reqwest::Client,
    url: String,
    shoppers: Vec<Shopper>,
    refreshers: Vec<Refresher>,
    starts_at: String,
}

impl Mix {
    /// Logs in the seeded customers: the first three quarters shop (each with an address and
    /// a booking), the rest refresh their sessions.
    pub(crate) async fn setup(
        options: &Options,
        client: &reqwest::Client,
        starts_at: String,
    ) -> anyhow::Result<Self> {
        let count = options.customers.max(2);
        let shopping = (count * 3 / 4).max(1);
        let mut shoppers = Vec::new();
        for index in 1..=shopping {
            let customer = log_in(options, client, index).await?;
            let booking_id = book_once(options, client, &customer).await?;
            let quote = serde_json::to_vec(&json!({
                "address_id": customer.address_id,
                "service": "standard",
            }))?;
            shoppers.push(Shopper {
                booking_id,
                booking: customer.booking,
                quote,
                address_id: customer.address_id,
                token: customer.token,
            });
        }
        let mut refreshers = Vec::new();
        for index in shopping + 1..=count {
            let session = session(options, client, index).await?;
            refreshers.push(Refresher {
                refresh_token: Mutex::new(
                    session["refresh_token"]
                        .as_str()
                        .context("no refresh token")?
                        .to_owned(),
                ),
            });
        }
        Ok(Mix {
            client: client.clone(),
            url: options.url.clone(),
            shoppers,
            refreshers,
            starts_at,
        })
    }

    /// Makes request number `sequence`; returns its transaction and the status (0: no
    /// answer).
    pub(crate) async fn call(self: &Arc<Self>, sequence: u64) -> (&'static str, u16) {
        let transaction = pick(sequence);
        let turn = usize::try_from(sequence / 100 + sequence * 7).unwrap_or(0);
        let shopper = &self.shoppers[turn % self.shoppers.len()];
        let url = &self.url;
        let request = match transaction {
            "search" => search_request(&self.client, url, &self.starts_at, sequence),
            "recommendations" => self
                .client
                .get(format!("{url}/v1/recommendations"))
                .query(&[("address_id", shopper.address_id.as_str()), ("limit", "10")]),
            "quote" => self
                .client
                .post(format!("{url}/v1/quotes"))
                .header("content-type", "application/json")
                .body(shopper.quote.clone()),
            "read-booking" => self
                .client
                .get(format!("{url}/v1/bookings/{}", shopper.booking_id)),
            "book" => self
                .client
                .post(format!("{url}/v1/bookings"))
                .header(
                    "idempotency-key",
                    format!("loadgen-{}-{sequence}", std::process::id()),
                )
                .header("content-type", "application/json")
                .body(shopper.booking.clone()),
            _ => return (transaction, self.refresh(turn).await),
        };
        (
            transaction,
            status_of(request.bearer_auth(&shopper.token).send().await),
        )
    }

    /// Refreshes a refresher's session, keeping the rotated token for its next turn.
    async fn refresh(&self, turn: usize) -> u16 {
        let Some(refresher) = self.refreshers.get(turn % self.refreshers.len().max(1)) else {
            return 0;
        };
        let mut refresh_token = refresher.refresh_token.lock().await;
        let answer = self
            .client
            .post(format!("{}/v1/auth/refresh", self.url))
            .json(&json!({ "refresh_token": *refresh_token }))
            .send()
            .await;
        let Ok(response) = answer else {
            return 0;
        };
        let status = response.status().as_u16();
        if let Ok(session) = response.json::<Value>().await
            && let Some(rotated) = session["refresh_token"].as_str()
        {
            *refresh_token = rotated.to_owned();
        }
        status
    }
}

/// The transaction of request number `sequence`: 37 is prime to 100, so each hundred
/// consecutive requests visit every slot once, interleaved.
fn pick(sequence: u64) -> &'static str {
    let mut slot = (sequence * 37) % 100;
    for (transaction, share) in SHARES {
        if slot < share {
            return transaction;
        }
        slot -= share;
    }
    SHARES[0].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hundred_requests_hold_the_shares_exactly() {
        for start in [0_u64, 13, 1_000] {
            let mut counts = std::collections::BTreeMap::new();
            for sequence in start..start + 100 {
                *counts.entry(pick(sequence)).or_insert(0_u64) += 1;
            }
            for (transaction, share) in SHARES {
                assert_eq!(counts.get(transaction), Some(&share), "{transaction}");
            }
        }
    }
}

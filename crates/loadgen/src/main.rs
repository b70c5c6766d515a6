//! `spruce-loadgen`: drives the gateway and reports throughput and latency percentiles.
//!
//! ```text
//! spruce-loadgen get-booking    (--rate R | --concurrency C) [--seconds S] [--url U]
//! spruce-loadgen create-booking (--rate R | --concurrency C) [--seconds S] [--url U] [--amqp A]
//!                               [--customers N] [--exchange E]
//! spruce-loadgen search         (--rate R | --concurrency C) [--seconds S] [--url U]
//! ```
//!
//! Setup uses the seeded data set (`customer01@spruce.test` and on). Open-loop runs (`--rate`)
//! measure each request from when it was due, so a slow server cannot hide its queueing
//! (no coordinated omission). `create-booking` books without a cleaner (no slot conflicts),
//! taking turns between the first N customers (40 by default, the curated set's all; each
//! adds an address of their own), and afterwards counts the `booking.created` events that
//! reached RabbitMQ. `search` asks `GET /v1/search/cleaners` with every filter on, top 20
//! within 10 km of a point that moves around central Berlin (where the seeded cleaners
//! live) from one request to the next, for a start next week.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use lapin::{
    Connection, ConnectionProperties,
    options::{QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions},
    types::FieldTable,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How load is applied.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Rate(u64),
    Concurrency(usize),
}

/// What the load is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    GetBooking,
    CreateBooking,
    Search,
}

#[derive(Debug)]
struct Options {
    which: Which,
    mode: Mode,
    seconds: u64,
    url: String,
    amqp: String,
    exchange: String,
    customers: u32,
}

/// What `--help` prints, and what a wrong command line is answered with.
const USAGE: &str = "\
usage: spruce-loadgen get-booking|create-booking|search [options]
  --rate R          open loop: R requests a second, each timed from when it was due
  --concurrency C   closed loop: C requests in flight (the default, 32)
  --seconds S       how long to run (10)
  --url U           the gateway (http://127.0.0.1:8080)
  --customers N     create-booking: how many seeded customers take turns (40)
  --amqp A          create-booking: RabbitMQ, to count the events (amqp://guest:guest@127.0.0.1:5672/%2f)
  --exchange E      create-booking: the exchange the events go to (spruce.events)";

/// Returns the options of the command line, or `None` when it asks for help.
fn options() -> anyhow::Result<Option<Options>> {
    if std::env::args().any(|argument| argument == "--help" || argument == "-h") {
        return Ok(None);
    }
    let mut arguments = std::env::args().skip(1);
    let which = match arguments.next().as_deref() {
        Some("get-booking") => Which::GetBooking,
        Some("create-booking") => Which::CreateBooking,
        Some("search") => Which::Search,
        Some(other) => bail!("unknown scenario {other}\n{USAGE}"),
        None => bail!("{USAGE}"),
    };
    let mut options = Options {
        which,
        mode: Mode::Concurrency(32),
        seconds: 10,
        url: "http://127.0.0.1:8080".to_owned(),
        amqp: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
        exchange: "spruce.events".to_owned(),
        customers: 40,
    };
    while let Some(flag) = arguments.next() {
        let value = arguments
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--rate" => options.mode = Mode::Rate(number(&flag, &value)?),
            "--concurrency" => options.mode = Mode::Concurrency(number(&flag, &value)?),
            "--seconds" => options.seconds = number(&flag, &value)?,
            "--url" => options.url = value,
            "--amqp" => options.amqp = value,
            "--exchange" => options.exchange = value,
            "--customers" => options.customers = number::<u32>(&flag, &value)?.max(1),
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok(Some(options))
}

/// Returns the whole number `flag` was given, or an error naming the flag.
fn number<T: std::str::FromStr>(flag: &str, value: &str) -> anyhow::Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("{flag} takes a whole number, not {value:?}"))
}

/// One request's outcome.
struct Sample {
    status: u16,
    latency: Duration,
}

/// Makes one request of the scenario.
#[derive(Clone)]
struct Scenario {
    client: reqwest::Client,
    url: String,
    /// The customers taking turns, never empty.
    customers: Arc<[Customer]>,
    kind: Kind,
}

/// A logged-in customer and the booking they ask for, serialized once.
struct Customer {
    token: String,
    booking: Vec<u8>,
}

#[derive(Clone)]
enum Kind {
    /// The first customer reads one booking of theirs.
    GetBooking {
        booking_id: String,
    },
    CreateBooking,
    /// Searches starting at this RFC 3339 moment.
    Search {
        starts_at: String,
    },
}

impl Scenario {
    async fn call(&self, sequence: u64) -> u16 {
        let turn = usize::try_from(sequence).unwrap_or(0) % self.customers.len();
        let customer = &self.customers[turn];
        let request = match &self.kind {
            Kind::GetBooking { booking_id } => self
                .client
                .get(format!("{}/v1/bookings/{booking_id}", self.url)),
            Kind::CreateBooking => self
                .client
                .post(format!("{}/v1/bookings", self.url))
                .header(
                    "idempotency-key",
                    format!("loadgen-{}-{sequence}", std::process::id()),
                )
                .header("content-type", "application/json")
                .body(customer.booking.clone()),
            Kind::Search { starts_at } => {
                // Points on a 10 × 10 grid over central Berlin, visited out of order.
                let (row, column) = ((sequence * 7) % 10, (sequence * 3 + sequence / 10) % 10);
                let lat = 52.47 + 0.01 * row as f64;
                let lng = 13.33 + 0.015 * column as f64;
                self.client
                    .get(format!("{}/v1/search/cleaners", self.url))
                    .query(&[
                        ("lat", lat.to_string()),
                        ("lng", lng.to_string()),
                        ("radius_km", "10".to_owned()),
                        ("service", "standard".to_owned()),
                        ("starts_at", starts_at.clone()),
                        ("duration_min", "120".to_owned()),
                        ("min_rating", "3.5".to_owned()),
                        ("max_rate_cents", "4500".to_owned()),
                        ("limit", "20".to_owned()),
                    ])
            }
        };
        match request.bearer_auth(&customer.token).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }
}

fn booking_body(address_id: &str) -> Value {
    // Bookings without a cleaner hold no slot, so they can all share one time.
    let starts_at = chrono::Utc::now().date_naive() + chrono::Days::new(30);
    json!({
        "address_id": address_id,
        "service": "standard",
        "starts_at": format!("{starts_at}T10:00:00Z"),
        "payment_token": "tok_visa"
    })
}

async fn setup(options: &Options, client: &reqwest::Client) -> anyhow::Result<Scenario> {
    let count = match options.which {
        Which::GetBooking | Which::Search => 1,
        Which::CreateBooking => options.customers,
    };
    let mut customers = Vec::new();
    for index in 1..=count {
        customers.push(log_in(options, client, index).await?);
    }
    let kind = if options.which == Which::Search {
        // Next week's Tuesday at 10:00 UTC: within most cleaners' hours.
        let today = chrono::Utc::now().date_naive();
        let to_monday = 7 - u64::from(chrono::Datelike::weekday(&today).num_days_from_monday());
        let tuesday = today + chrono::Days::new(to_monday + 1);
        Kind::Search {
            starts_at: format!("{tuesday}T10:00:00Z"),
        }
    } else if options.which == Which::GetBooking {
        let booking: Value = client
            .post(format!("{}/v1/bookings", options.url))
            .bearer_auth(&customers[0].token)
            .header(
                "idempotency-key",
                format!("loadgen-setup-{}", uuid::Uuid::new_v4()),
            )
            .header("content-type", "application/json")
            .body(customers[0].booking.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Kind::GetBooking {
            booking_id: booking["id"].as_str().context("no booking id")?.to_owned(),
        }
    } else {
        Kind::CreateBooking
    };
    Ok(Scenario {
        client: client.clone(),
        url: options.url.clone(),
        customers: customers.into(),
        kind,
    })
}

/// Logs in the seeded customer number `index` and adds an address for the load test.
async fn log_in(
    options: &Options,
    client: &reqwest::Client,
    index: u32,
) -> anyhow::Result<Customer> {
    let email = format!("customer{index:02}@spruce.test");
    let session: Value = client
        .post(format!("{}/v1/auth/login", options.url))
        .json(&json!({"email": email, "password": "spruce-dev-password"}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("log in as {email} (is the data set seeded? make seed)"))?
        .json()
        .await?;
    let token = session["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let address: Value = client
        .post(format!("{}/v1/me/addresses", options.url))
        .bearer_auth(&token)
        .json(&json!({
            "label": "Load test", "line1": "Torstrasse 1", "city": "Berlin", "postal_code": "10119",
            "lat": 52.529, "lng": 13.401, "size_m2": 60, "bedrooms": 2, "bathrooms": 1, "has_pets": false
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let address_id = address["id"].as_str().context("no address id")?;
    let booking = serde_json::to_vec(&booking_body(address_id))?;
    Ok(Customer { token, booking })
}

async fn run(scenario: Scenario, mode: Mode, duration: Duration) -> (Vec<Sample>, Duration) {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Sample>();
    let started = Instant::now();
    let deadline = started + duration;
    match mode {
        Mode::Concurrency(workers) => {
            let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
            for _ in 0..workers {
                let (scenario, sender, counter) =
                    (scenario.clone(), sender.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let sequence = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let begun = Instant::now();
                        let status = scenario.call(sequence).await;
                        sender
                            .send(Sample {
                                status,
                                latency: begun.elapsed(),
                            })
                            .ok();
                    }
                });
            }
        }
        Mode::Rate(rate) => {
            let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            let mut sequence = 0_u64;
            let sender = sender.clone();
            let scenario = scenario.clone();
            // Paced by a thread of its own: tokio's timer ticks in whole milliseconds, which
            // would release requests in bursts and add up to a millisecond to each latency.
            let runtime = tokio::runtime::Handle::current();
            std::thread::spawn(move || {
                let mut due = Instant::now();
                while due < deadline {
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let (scenario, sender) = (scenario.clone(), sender.clone());
                    let scheduled = due;
                    runtime.spawn(async move {
                        let status = scenario.call(sequence).await;
                        sender
                            .send(Sample {
                                status,
                                latency: scheduled.elapsed(),
                            })
                            .ok();
                    });
                    sequence += 1;
                    due += interval;
                }
            });
        }
    }
    drop(sender);
    let mut samples = Vec::new();
    while let Some(sample) = receiver.recv().await {
        samples.push(sample);
    }
    (samples, started.elapsed())
}

fn report(samples: &mut [Sample], elapsed: Duration) {
    samples.sort_by_key(|sample| sample.latency);
    let percentile = |p: f64| {
        let index = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
        samples
            .get(index)
            .map_or(0.0, |sample| sample.latency.as_secs_f64() * 1_000.0)
    };
    let mut statuses = BTreeMap::new();
    for sample in samples.iter() {
        *statuses.entry(sample.status).or_insert(0_u64) += 1;
    }
    println!(
        "requests {} in {:.1} s = {:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; statuses {statuses:?}",
        samples.len(),
        elapsed.as_secs_f64(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.90),
        percentile(0.99),
        percentile(1.0),
    );
}

/// Declares (and empties) a queue that collects every `booking.created`.
async fn counting_queue(options: &Options) -> anyhow::Result<(Connection, lapin::Channel)> {
    let connection = Connection::connect(&options.amqp, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let queue = "spruce-loadgen.booking-created";
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.into(),
            options.exchange.as_str().into(),
            "booking.created".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_purge(queue.into(), QueuePurgeOptions::default())
        .await?;
    Ok((connection, channel))
}

async fn count_events(channel: &lapin::Channel, expected: u64) -> anyhow::Result<u64> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let mut last = u64::MAX;
    loop {
        let queue = channel
            .queue_declare(
                "spruce-loadgen.booking-created".into(),
                passive,
                FieldTable::default(),
            )
            .await?;
        let count = u64::from(queue.message_count());
        if count >= expected || count == last {
            return Ok(count);
        }
        last = count;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Prints `line` and flushes it at once, so that a harness reading a pipe sees it in time.
fn mark(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").ok();
    stdout.flush().ok();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(options) = options()? else {
        println!("{USAGE}");
        return Ok(());
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1_024)
        .build()?;
    let scenario = setup(&options, &client).await?;
    let counting = if options.which == Which::CreateBooking {
        Some(counting_queue(&options).await?)
    } else {
        None
    };
    mark("load: started");
    let (mut samples, elapsed) =
        run(scenario, options.mode, Duration::from_secs(options.seconds)).await;
    mark("load: stopped");
    report(&mut samples, elapsed);
    if let Some((connection, channel)) = counting {
        let created = samples.iter().filter(|sample| sample.status == 201).count() as u64;
        let events = count_events(&channel, created).await?;
        println!("bookings created {created}; booking.created events in RabbitMQ {events}");
        channel
            .queue_delete("spruce-loadgen.booking-created".into(), Default::default())
            .await
            .ok();
        connection.close(200, "done".into()).await.ok();
    }
    Ok(())
}

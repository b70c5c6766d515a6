//! `spruce-loadgen`: drives the gateway and reports throughput and latency percentiles.
//!
//! ```text
//! spruce-loadgen get-booking    (--rate R | --concurrency C) [--seconds S] [--url U]
//! spruce-loadgen create-booking (--rate R | --concurrency C) [--seconds S] [--url U] [--amqp A]
//!                               [--customers N] [--exchange E]
//! spruce-loadgen search         (--rate R | --concurrency C) [--seconds S] [--url U]
//! spruce-loadgen mix            --rate R [--profile steady|ramp|spike] [--seconds S] [--url U]
//!                               [--customers N] [--json FILE]
//! ```
//!
//! Setup uses the seeded data set (`customer01@spruce.test` and on). Open-loop runs (`--rate`)
//! measure each request from when it was due, so a slow server cannot hide its queueing
//! (no coordinated omission). `create-booking` books without a cleaner (no slot conflicts),
//! taking turns between the first N customers (40 by default, the curated set's all; each
//! adds an address of their own), and afterwards counts the `booking.created` events that
//! reached RabbitMQ. `search` asks `GET /v1/search/cleaners` with every filter on, top 20
//! within 10 km of a point that moves around central Berlin (where the seeded cleaners
//! live) from one request to the next, for a start next week. `mix` is the mobile apps'
//! traffic (see `mix.rs`), at a steady rate, a ramp up to it or a spike above it, reported
//! per transaction.

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

mod mix;

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
    Mix,
}

/// How an open-loop rate changes over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// The rate throughout.
    Steady,
    /// From a tenth of the rate up to the rate, evenly.
    Ramp,
    /// The rate, with three times it over the middle fifth of the run.
    Spike,
}

impl Profile {
    /// Requests a second due at `elapsed` (a share 0–1 of the run) for the rate `rate`.
    fn rate_at(self, elapsed: f64, rate: f64) -> f64 {
        match self {
            Profile::Steady => rate,
            Profile::Ramp => rate * (0.1 + 0.9 * elapsed.clamp(0.0, 1.0)),
            Profile::Spike if (0.4..0.6).contains(&elapsed) => rate * 3.0,
            Profile::Spike => rate,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Profile::Steady => "steady",
            Profile::Ramp => "ramp",
            Profile::Spike => "spike",
        }
    }
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
    profile: Profile,
    json: Option<String>,
}

/// What `--help` prints, and what a wrong command line is answered with.
const USAGE: &str = "\
usage: spruce-loadgen get-booking|create-booking|search|mix [options]
  --rate R          open loop: R requests a second, each timed from when it was due
  --concurrency C   closed loop: C requests in flight (the default, 32)
  --seconds S       how long to run (10)
  --url U           the gateway (http://127.0.0.1:8080)
  --customers N     create-booking, mix: how many seeded customers take turns (40; in the
                    mix three quarters shop and the rest refresh their sessions)
  --profile P       open loop: steady (the default), ramp (up to R) or spike (3 R over the
                    middle fifth)
  --json FILE       also write the report, per transaction, as JSON
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
        Some("mix") => Which::Mix,
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
        profile: Profile::Steady,
        json: None,
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
            "--profile" => {
                options.profile = match value.as_str() {
                    "steady" => Profile::Steady,
                    "ramp" => Profile::Ramp,
                    "spike" => Profile::Spike,
                    other => bail!("unknown profile {other}\n{USAGE}"),
                }
            }
            "--json" => options.json = Some(value),
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    if options.which == Which::Mix && !matches!(options.mode, Mode::Rate(_)) {
        bail!("mix runs open loop: give it --rate\n{USAGE}");
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
    transaction: &'static str,
    status: u16,
    latency: Duration,
}

/// Makes one request of the scenario.
#[derive(Clone)]
struct Scenario {
    client: reqwest::Client,
    url: String,
    /// The customers taking turns: never empty, but for the mix (its own are in [`Kind::Mix`]).
    customers: Arc<[Customer]>,
    kind: Kind,
}

/// A logged-in customer, their load-test address and the booking they ask for,
/// serialized once.
struct Customer {
    token: String,
    address_id: String,
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
    Mix(Arc<mix::Mix>),
}

impl Scenario {
    /// Makes request number `sequence`; returns its transaction and status (0: no answer).
    async fn call(&self, sequence: u64) -> (&'static str, u16) {
        // Taken only by the kinds that have customers here (not the mix).
        let customer = || {
            let turn = usize::try_from(sequence).unwrap_or(0) % self.customers.len();
            &self.customers[turn]
        };
        let (transaction, request) = match &self.kind {
            Kind::GetBooking { booking_id } => (
                "read-booking",
                self.client
                    .get(format!("{}/v1/bookings/{booking_id}", self.url)),
            ),
            Kind::CreateBooking => (
                "book",
                self.client
                    .post(format!("{}/v1/bookings", self.url))
                    .header(
                        "idempotency-key",
                        format!("loadgen-{}-{sequence}", std::process::id()),
                    )
                    .header("content-type", "application/json")
                    .body(customer().booking.clone()),
            ),
            Kind::Search { starts_at } => (
                "search",
                search_request(&self.client, &self.url, starts_at, sequence),
            ),
            Kind::Mix(mix) => return mix.call(sequence).await,
        };
        (
            transaction,
            status_of(request.bearer_auth(&customer().token).send().await),
        )
    }
}

/// The status of an answer; 0 when none came.
fn status_of(answer: reqwest::Result<reqwest::Response>) -> u16 {
    answer.map_or(0, |response| response.status().as_u16())
}

/// `GET /v1/search/cleaners` with every filter on, top 20 within 10 km of a point on a
/// 10 × 10 grid over central Berlin chosen by `sequence`, for `starts_at`.
fn search_request(
    client: &reqwest::Client,
    url: &str,
    starts_at: &str,
    sequence: u64,
) -> reqwest::RequestBuilder {
    // Visited out of order.
    let (row, column) = ((sequence * 7) % 10, (sequence * 3 + sequence / 10) % 10);
    let lat = 52.47 + 0.01 * row as f64;
    let lng = 13.33 + 0.015 * column as f64;
    client.get(format!("{url}/v1/search/cleaners")).query(&[
        ("lat", lat.to_string()),
        ("lng", lng.to_string()),
        ("radius_km", "10".to_owned()),
        ("service", "standard".to_owned()),
        ("starts_at", starts_at.to_owned()),
        ("duration_min", "120".to_owned()),
        ("min_rating", "3.5".to_owned()),
        ("max_rate_cents", "4500".to_owned()),
        ("limit", "20".to_owned()),
    ])
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
    // Next week's Tuesday at 10:00 UTC: within most cleaners' hours.
    let today = chrono::Utc::now().date_naive();
    let to_monday = 7 - u64::from(chrono::Datelike::weekday(&today).num_days_from_monday());
    let tuesday = today + chrono::Days::new(to_monday + 1);
    let starts_at = format!("{tuesday}T10:00:00Z");
    if options.which == Which::Mix {
        let mix = mix::Mix::setup(options, client, starts_at).await?;
        return Ok(Scenario {
            client: client.clone(),
            url: options.url.clone(),
            // The mix has customers of its own.
            customers: Arc::from([]),
            kind: Kind::Mix(Arc::new(mix)),
        });
    }
    let count = match options.which {
        Which::GetBooking | Which::Search | Which::Mix => 1,
        Which::CreateBooking => options.customers,
    };
    let mut customers = Vec::new();
    for index in 1..=count {
        customers.push(log_in(options, client, index).await?);
    }
    let kind = if options.which == Which::Search {
        Kind::Search { starts_at }
    } else if options.which == Which::GetBooking {
        Kind::GetBooking {
            booking_id: book_once(options, client, &customers[0]).await?,
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

/// Books once as `customer` (setup, not load); returns the booking's id.
async fn book_once(
    options: &Options,
    client: &reqwest::Client,
    customer: &Customer,
) -> anyhow::Result<String> {
    let booking: Value = client
        .post(format!("{}/v1/bookings", options.url))
        .bearer_auth(&customer.token)
        .header(
            "idempotency-key",
            format!("loadgen-setup-{}", uuid::Uuid::new_v4()),
        )
        .header("content-type", "application/json")
        .body(customer.booking.clone())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(booking["id"].as_str().context("no booking id")?.to_owned())
}

/// Logs in the seeded customer number `index`; returns the session (tokens).
async fn session(options: &Options, client: &reqwest::Client, index: u32) -> anyhow::Result<Value> {
    let email = format!("customer{index:02}@spruce.test");
    Ok(client
        .post(format!("{}/v1/auth/login", options.url))
        .json(&json!({"email": email, "password": "spruce-dev-password"}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("log in as {email} (is the data set seeded? make seed)"))?
        .json()
        .await?)
}

/// Logs in the seeded customer number `index` and adds an address for the load test.
async fn log_in(
    options: &Options,
    client: &reqwest::Client,
    index: u32,
) -> anyhow::Result<Customer> {
    let session = session(options, client, index).await?;
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
    let address_id = address["id"].as_str().context("no address id")?.to_owned();
    let booking = serde_json::to_vec(&booking_body(&address_id))?;
    Ok(Customer {
        token,
        address_id,
        booking,
    })
}

async fn run(
    scenario: Scenario,
    mode: Mode,
    profile: Profile,
    duration: Duration,
) -> (Vec<Sample>, Duration) {
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
                        let (transaction, status) = scenario.call(sequence).await;
                        sender
                            .send(Sample {
                                transaction,
                                status,
                                latency: begun.elapsed(),
                            })
                            .ok();
                    }
                });
            }
        }
        Mode::Rate(rate) => {
            let rate = rate.max(1) as f64;
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
                        let (transaction, status) = scenario.call(sequence).await;
                        sender
                            .send(Sample {
                                transaction,
                                status,
                                latency: scheduled.elapsed(),
                            })
                            .ok();
                    });
                    sequence += 1;
                    let share = (due - started).as_secs_f64() / duration.as_secs_f64();
                    due += Duration::from_secs_f64(1.0 / profile.rate_at(share, rate));
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

/// The latency in milliseconds at or under which the share `p` of `samples` (sorted by
/// latency) came back; 0 for none.
fn percentile(samples: &[&Sample], p: f64) -> f64 {
    let index = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
    samples
        .get(index)
        .map_or(0.0, |sample| sample.latency.as_secs_f64() * 1_000.0)
}

/// One transaction's figures, in milliseconds.
struct Figures {
    count: usize,
    errors: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Figures {
    /// `samples` sorted by latency.
    fn of(samples: &[&Sample]) -> Self {
        let percentile = |p: f64| percentile(samples, p);
        Figures {
            count: samples.len(),
            errors: samples
                .iter()
                .filter(|sample| !(200..400).contains(&sample.status))
                .count(),
            p50: percentile(0.50),
            p95: percentile(0.95),
            p99: percentile(0.99),
            max: percentile(1.0),
        }
    }

    fn json(&self) -> Value {
        json!({
            "count": self.count, "errors": self.errors,
            "p50_ms": self.p50, "p95_ms": self.p95, "p99_ms": self.p99, "max_ms": self.max,
        })
    }
}

/// Prints the whole run's line, then a table per transaction; writes the JSON report to
/// `json` when given.
fn report(samples: &mut [Sample], elapsed: Duration, options: &Options) -> anyhow::Result<()> {
    samples.sort_by_key(|sample| sample.latency);
    let all: Vec<&Sample> = samples.iter().collect();
    let total = Figures::of(&all);
    let mut statuses = BTreeMap::new();
    for sample in samples.iter() {
        *statuses.entry(sample.status).or_insert(0_u64) += 1;
    }
    println!(
        "requests {} in {:.1} s = {:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; statuses {statuses:?}",
        total.count,
        elapsed.as_secs_f64(),
        total.count as f64 / elapsed.as_secs_f64(),
        total.p50,
        percentile(&all, 0.90),
        total.p99,
        total.max,
    );
    let mut by_transaction: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for sample in samples.iter() {
        by_transaction
            .entry(sample.transaction)
            .or_default()
            .push(sample);
    }
    println!(
        "{:<16} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "transaction", "count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    let mut transactions = serde_json::Map::new();
    for (transaction, samples) in &by_transaction {
        let figures = Figures::of(samples);
        println!(
            "{transaction:<16} {:>8} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            figures.count, figures.errors, figures.p50, figures.p95, figures.p99, figures.max
        );
        transactions.insert((*transaction).to_owned(), figures.json());
    }
    if let Some(path) = &options.json {
        let rate = match options.mode {
            Mode::Rate(rate) => json!(rate),
            Mode::Concurrency(_) => Value::Null,
        };
        let document = json!({
            "profile": options.profile.name(),
            "rate": rate,
            "seconds": elapsed.as_secs_f64(),
            "all": total.json(),
            "transactions": transactions,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&document)?)
            .with_context(|| format!("write {path}"))?;
    }
    Ok(())
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
    let (mut samples, elapsed) = run(
        scenario,
        options.mode,
        options.profile,
        Duration::from_secs(options.seconds),
    )
    .await;
    mark("load: stopped");
    report(&mut samples, elapsed, &options)?;
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

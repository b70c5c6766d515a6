//! The curated data set (`spruce-core seed`) and its large variant (`--scale N`).
//!
//! Everything is derived from a fixed seed, so every run makes the same data: users with
//! predictable emails and one development password, cleaners and addresses spread over
//! Berlin, and a year of completed bookings whose actual durations follow a hidden law
//! (home size, rooms, service, pets, the cleaner's own speed) plus noise, so the duration
//! model has something true to learn. Rows go in with `COPY`, so large sets load at
//! hundreds of thousands of rows per second.

use std::{fmt::Write as _, time::Instant};

use anyhow::Context as _;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use spruce_platform::settings::DatabaseSettings;
use sqlx::{AssertSqlSafe, PgPool, postgres::PgConnection};
use uuid::Uuid;

use crate::{
    domain::{
        address::AddressInput,
        booking::{estimate_duration_min, price_cents},
        cleaner::{AvailabilityWindow, CURRENCY, Service},
        geo::GeoPoint,
    },
    passwords::hash_password,
    store::MIGRATIONS,
};

/// The password of every seeded account. Development data only.
pub const DEV_PASSWORD: &str = "spruce-dev-password";

/// How much to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSize {
    pub cleaners: u64,
    pub customers: u64,
    pub bookings: u64,
}

impl SeedSize {
    /// The curated set: 30 cleaners, 40 customers, 2,400 completed bookings.
    pub const CURATED: SeedSize = SeedSize {
        cleaners: 30,
        customers: 40,
        bookings: 2_400,
    };

    /// `n` cleaners, a third more customers and ten bookings per cleaner.
    pub fn scaled(n: u64) -> Self {
        SeedSize {
            cleaners: n.max(1),
            customers: (n * 4 / 3).max(1),
            bookings: n * 10,
        }
    }
}

/// What a seed run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedReport {
    /// False when the data set was there already and nothing was written.
    pub written: bool,
    pub rows: u64,
    pub seconds: f64,
}

/// The hidden law behind seeded durations: what a cleaning really takes, in minutes.
fn true_duration_min(service: Service, home: &AddressInput, speed: f64, noise: f64) -> u32 {
    let (base, per_m2) = match service {
        Service::Standard => (40.0, 0.75),
        Service::Deep => (75.0, 1.3),
        Service::MoveOut => (100.0, 1.5),
        Service::Office => (35.0, 0.55),
    };
    let pets = if home.has_pets { 18.0 } else { 0.0 };
    let minutes = (base
        + per_m2 * f64::from(home.size_m2)
        + 22.0 * f64::from(home.bathrooms)
        + 9.0 * f64::from(home.bedrooms)
        + pets)
        * speed
        * noise;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rounded = minutes.round().max(20.0) as u32;
    rounded
}

/// A small deterministic generator (SplitMix64): the same stream on every machine and in
/// every version, unlike library generators that reserve the right to change.
struct Dice(u64);

impl Dice {
    fn for_row(kind: u64, index: u64) -> Self {
        Dice(
            kind.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)
                ^ 0x5EED,
        )
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let value = (self.next() >> 11) as f64 / (1_u64 << 53) as f64;
        value
    }

    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A standard normal sample (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

const CUSTOMER: u64 = 1;
const CLEANER: u64 = 2;
const BOOKING: u64 = 3;
/// The dice of a cleaner's public point, apart from theirs, so that adding it changed no
/// other row.
const AREA: u64 = 4;

const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hassan", "Ida", "Jonas", "Kaja",
    "Leon", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sami", "Tara", "Umut", "Vera", "Yusuf", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Becker", "Demir", "Fischer", "Hoffmann", "Kaya", "Klein", "Koch", "Lange", "Meyer", "Nowak",
    "Richter", "Schmidt", "Schulz", "Wagner", "Weber", "Wolf",
];
const STREETS: &[&str] = &[
    "Torstrasse",
    "Kastanienallee",
    "Oranienstrasse",
    "Bergmannstrasse",
    "Danziger Strasse",
    "Sonnenallee",
    "Kantstrasse",
    "Boxhagener Strasse",
    "Prenzlauer Allee",
    "Karl-Marx-Allee",
];

/// Berlin's centre; seeded homes and cleaners spread around it.
const CENTRE: GeoPoint = GeoPoint {
    lat: 52.52,
    lng: 13.405,
};

fn id(kind: &str, index: u64) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("spruce-seed/{kind}/{index}").as_bytes(),
    )
}

fn name(dice: &mut Dice) -> String {
    let first = FIRST_NAMES[usize::try_from(dice.below(FIRST_NAMES.len() as u64)).unwrap_or(0)];
    let last = LAST_NAMES[usize::try_from(dice.below(LAST_NAMES.len() as u64)).unwrap_or(0)];
    format!("{first} {last}")
}

fn near_centre(dice: &mut Dice) -> GeoPoint {
    GeoPoint {
        lat: CENTRE.lat + dice.range(-0.06, 0.06),
        lng: CENTRE.lng + dice.range(-0.10, 0.10),
    }
}

/// A seeded cleaner's public traits and their hidden speed.
struct SeedCleaner {
    services: Vec<Service>,
    hourly_rate_cents: i64,
    home: GeoPoint,
    radius_km: f64,
    availability: Vec<AvailabilityWindow>,
    speed: f64,
}

fn cleaner(index: u64) -> SeedCleaner {
    let mut dice = Dice::for_row(CLEANER, index);
    let mut services = vec![Service::Standard];
    if index.is_multiple_of(2) {
        services.push(Service::Deep);
    }
    if index.is_multiple_of(3) {
        services.push(Service::MoveOut);
    }
    if index % 4 == 1 {
        services.push(Service::Office);
    }
    let mut availability: Vec<AvailabilityWindow> = (0..5)
        .map(|weekday| AvailabilityWindow {
            weekday,
            start_minute: 8 * 60,
            end_minute: 18 * 60,
        })
        .collect();
    if index == 1 {
        // cleaner01 takes work at any hour of any day, so that the README's walk-through can
        // book a cleaning that starts soon enough to be started and completed.
        availability = (0..7)
            .map(|weekday| AvailabilityWindow {
                weekday,
                start_minute: 0,
                end_minute: 24 * 60,
            })
            .collect();
    } else if index % 2 == 1 {
        availability.push(AvailabilityWindow {
            weekday: 5,
            start_minute: 9 * 60,
            end_minute: 14 * 60,
        });
    }
    #[allow(clippy::cast_possible_truncation)]
    let hourly_rate_cents = (dice.range(20.0, 40.0).round() as i64) * 100;
    SeedCleaner {
        services,
        hourly_rate_cents,
        home: near_centre(&mut dice),
        radius_km: dice.range(6.0, 15.0).round(),
        availability,
        speed: dice.range(0.8, 1.25),
    }
}

fn address(index: u64) -> AddressInput {
    let mut dice = Dice::for_row(CUSTOMER, index);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let size_m2 = dice.range(28.0, 180.0) as u32;
    let bedrooms = (size_m2 / 35).clamp(0, 5);
    let bathrooms = 1 + u32::from(size_m2 > 110) + u32::from(size_m2 > 160);
    let street = STREETS[usize::try_from(dice.below(STREETS.len() as u64)).unwrap_or(0)];
    AddressInput {
        label: "Home".to_owned(),
        line1: format!("{street} {}", 1 + dice.below(120)),
        city: "Berlin".to_owned(),
        postal_code: format!("10{:03}", 115 + dice.below(800)),
        location: near_centre(&mut dice),
        size_m2,
        bedrooms,
        bathrooms,
        has_pets: dice.unit() < 0.3,
    }
}

/// One seeded booking; derived from its index alone, so it can be generated once per table.
struct SeedBooking {
    id: Uuid,
    customer: u64,
    cleaner: u64,
    service: Service,
    starts_at: DateTime<Utc>,
    duration_min: u32,
    actual_min: u32,
    price_cents: i64,
    rating: Option<u8>,
}

/// Seeded history ends here, so every run makes the same timestamps.
fn history_end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn booking(index: u64, size: SeedSize) -> SeedBooking {
    let mut dice = Dice::for_row(BOOKING, index);
    let customer = 1 + dice.below(size.customers);
    let cleaner_index = 1 + dice.below(size.cleaners);
    let cleaner = cleaner(cleaner_index);
    let service =
        cleaner.services[usize::try_from(dice.below(cleaner.services.len() as u64)).unwrap_or(0)];
    let home = address(customer);
    #[allow(clippy::cast_possible_wrap)]
    let day = dice.below(365) as i64;
    #[allow(clippy::cast_possible_wrap)]
    let hour = 7 + dice.below(6) as i64;
    let starts_at = history_end() - Duration::days(365 - day) + Duration::hours(hour);
    let duration_min = estimate_duration_min(service, &home);
    let noise = (0.08 * dice.normal()).exp();
    let actual_min = true_duration_min(service, &home, cleaner.speed, noise);
    let rating = (dice.unit() < 0.6).then(|| {
        let score = 4.4 + (1.0 - cleaner.speed) * 2.5 + 0.6 * dice.normal();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rating = score.round().clamp(1.0, 5.0) as u8;
        rating
    });
    SeedBooking {
        id: id("booking", index),
        customer,
        cleaner: cleaner_index,
        service,
        starts_at,
        duration_min,
        actual_min,
        price_cents: price_cents(duration_min, cleaner.hourly_rate_cents),
        rating,
    }
}

fn customer_email(index: u64) -> String {
    format!("customer{index:02}@spruce.test")
}

fn cleaner_email(index: u64) -> String {
    format!("cleaner{index:02}@spruce.test")
}

/// `spruce-core seed [--scale N]`: migrates, then seeds unless the data set is there already.
///
/// # Errors
/// Fails on a bad option or when the database refuses the data.
pub async fn run_command(database: &DatabaseSettings, options: &[String]) -> anyhow::Result<()> {
    let (size, password_file) = seed_options(options)?;
    let environment = std::env::var("SPRUCE_ENV").unwrap_or_default();
    if !seed_allowed(&environment, password_file.is_some()) {
        anyhow::bail!(
            "seed is refused in staging and prod, and in e2e without --password-file (SPRUCE_ENV): its accounts share one password"
        );
    }
    let password = match &password_file {
        Some(path) => spruce_platform::settings::read_secret_file(std::path::Path::new(path))
            .with_context(|| format!("cannot read the password file {path}"))?,
        None => DEV_PASSWORD.to_owned(),
    };
    if password.len() < 12 {
        anyhow::bail!("the seeded accounts' password must be at least 12 characters");
    }
    // The data needs the schema, whatever `database.migrate_on_start` says.
    let pool = spruce_db::connect(database).await?;
    spruce_db::apply_migrations(&pool, MIGRATIONS).await?;
    let report = seed_with_password(&pool, size, &password).await?;
    if report.written {
        #[allow(clippy::cast_precision_loss)]
        let rate = report.rows as f64 / report.seconds.max(0.001);
        tracing::info!(
            rows = report.rows,
            seconds = report.seconds,
            rows_per_second = rate.round(),
            "seeded; every account has the same password ({})",
            if password_file.is_some() {
                "the file's"
            } else {
                DEV_PASSWORD
            }
        );
    } else {
        tracing::info!("the data set is there already; nothing seeded");
    }
    pool.close().await;
    Ok(())
}

/// The data set signs everyone in with one password, an admin included: the published
/// development one, or (e2e only, for the end-to-end suite) a secret one from a file.
/// Staging and prod hold real people's accounts and never take it.
fn seed_allowed(environment: &str, password_file: bool) -> bool {
    !spruce_platform::settings::PRODUCTION_LIKE.contains(&environment)
        || (password_file && environment == "e2e")
}

/// `[--scale N] [--password-file PATH]`.
fn seed_options(options: &[String]) -> anyhow::Result<(SeedSize, Option<String>)> {
    let mut size = SeedSize::CURATED;
    let mut password_file = None;
    let mut rest = options.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--scale" => {
                size = SeedSize::scaled(value.parse().map_err(|_| {
                    anyhow::anyhow!("--scale needs a number of cleaners, not {value:?}")
                })?);
            }
            "--password-file" => password_file = Some(value.clone()),
            _ => anyhow::bail!(
                "unknown seed option {flag:?}; expected --scale N and --password-file PATH"
            ),
        }
    }
    Ok((size, password_file))
}

/// Loads the data set with the development password unless it is there already.
///
/// # Errors
/// Fails when the database refuses the data.
pub async fn seed(pool: &PgPool, size: SeedSize) -> anyhow::Result<SeedReport> {
    seed_with_password(pool, size, DEV_PASSWORD).await
}

/// Loads the data set, every account with `password`, unless it is there already
/// (`admin@spruce.test` exists).
///
/// # Errors
/// Fails when the database refuses the data.
pub async fn seed_with_password(
    pool: &PgPool,
    size: SeedSize,
    password: &str,
) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let mut connection = pool.acquire().await?;
    let seeded: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = 'admin@spruce.test')")
            .fetch_one(&mut *connection)
            .await?;
    if seeded {
        return Ok(SeedReport {
            written: false,
            rows: 0,
            seconds: 0.0,
        });
    }
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    if size != SeedSize::CURATED {
        // Generated data is consistent by construction; skipping the per-row foreign-key
        // triggers makes bulk loads several times faster. Needs a superuser; without one the
        // load is just slower.
        let mut savepoint = sqlx::Connection::begin(&mut *transaction).await?;
        match sqlx::query("SET LOCAL session_replication_role = replica")
            .execute(&mut *savepoint)
            .await
        {
            Ok(_) => savepoint.commit().await?,
            Err(error) => {
                tracing::info!(%error, "loading with foreign-key checks");
                savepoint.rollback().await?;
            }
        }
    }
    let dropped = if size == SeedSize::CURATED {
        Vec::new()
    } else {
        drop_plain_indexes(&mut transaction).await?
    };
    let mut progress = Progress::new(size);
    let mut rows = 0;
    rows += copy_users(&mut transaction, size, &password_hash).await?;
    rows += copy_addresses(&mut transaction, size).await?;
    rows += copy_bookings(&mut transaction, size, &mut progress).await?;
    rows += copy_cleaner_profiles(&mut transaction, size).await?;
    for definition in dropped {
        sqlx::query(AssertSqlSafe(definition))
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(SeedReport {
        written: true,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The tables a load fills.
const LOADED_TABLES: &[&str] = &[
    "users",
    "addresses",
    "bookings",
    "payments",
    "reviews",
    "cleaner_profiles",
];

/// Drops the indexes of [`LOADED_TABLES`] that back no constraint and returns their
/// definitions, to be built again once the rows are in: one sort per index instead of a
/// million scattered inserts. Constraint indexes stay, so keys are still checked row by row.
async fn drop_plain_indexes(connection: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *connection)
        .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) \
         FROM pg_index i \
         WHERE i.indrelid = ANY ($1::text[]::regclass[]) \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
    )
    .bind(LOADED_TABLES)
    .fetch_all(&mut *connection)
    .await?;
    let mut definitions = Vec::with_capacity(indexes.len());
    for (name, definition) in indexes {
        // The name comes from the catalog, quoted where it needs to be.
        sqlx::query(AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut *connection)
            .await?;
        definitions.push(definition);
    }
    Ok(definitions)
}

/// Reports progress on stderr for large sets.
struct Progress {
    total: u64,
    done: u64,
    next_report: u64,
    started: Instant,
}

impl Progress {
    fn new(size: SeedSize) -> Self {
        // Each booking is written three times: booking, payment, maybe a review.
        Progress {
            total: size.bookings * 3,
            done: 0,
            next_report: 0,
            started: Instant::now(),
        }
    }

    fn advance(&mut self, rows: u64) {
        self.done += rows;
        if self.total < 100_000 || self.done < self.next_report {
            return;
        }
        self.next_report = self.done + self.total / 20;
        #[allow(clippy::cast_precision_loss)]
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        eprintln!(
            "seed: {:>3}% [{:<20}] {:.0} rows/s",
            self.done * 100 / self.total,
            "#".repeat(usize::try_from(self.done * 20 / self.total).unwrap_or(20)),
            rate
        );
    }
}

/// Sends `rows` (COPY text format, one row per line) into `statement`.
async fn copy(connection: &mut PgConnection, statement: &str, rows: &str) -> anyhow::Result<()> {
    let mut copy = connection.copy_in_raw(statement).await?;
    copy.send(rows.as_bytes()).await?;
    copy.finish()
        .await
        .with_context(|| format!("failed: {statement}"))?;
    Ok(())
}

const CHUNK_ROWS: u64 = 50_000;

/// Every seeded user lives in Berlin.
const SEED_ZONE: &str = "Europe/Berlin";

async fn copy_users(
    connection: &mut PgConnection,
    size: SeedSize,
    password_hash: &str,
) -> anyhow::Result<u64> {
    let mut rows = String::new();
    let admins = [
        ("admin@spruce.test", "Ada Admin"),
        ("admin02@spruce.test", "Ali Admin"),
    ];
    for (index, (email, full_name)) in (1_u64..).zip(admins) {
        writeln!(
            rows,
            "{}\t{email}\t{password_hash}\t{full_name}\tadmin\t{SEED_ZONE}",
            id("admin", index)
        )?;
    }
    for index in 1..=size.customers {
        let mut dice = Dice::for_row(CUSTOMER + 100, index);
        writeln!(
            rows,
            "{}\t{}\t{password_hash}\t{}\tcustomer\t{SEED_ZONE}",
            id("customer", index),
            customer_email(index),
            name(&mut dice)
        )?;
    }
    for index in 1..=size.cleaners {
        let mut dice = Dice::for_row(CLEANER + 100, index);
        writeln!(
            rows,
            "{}\t{}\t{password_hash}\t{}\tcleaner\t{SEED_ZONE}",
            id("cleaner", index),
            cleaner_email(index),
            name(&mut dice)
        )?;
    }
    copy(
        connection,
        "COPY users (id, email, password_hash, full_name, role, timezone) FROM STDIN",
        &rows,
    )
    .await?;
    // The data set's people have confirmed their emails.
    sqlx::query("UPDATE users SET email_verified_at = created_at WHERE email_verified_at IS NULL")
        .execute(&mut *connection)
        .await?;
    Ok(2 + size.customers + size.cleaners)
}

async fn copy_addresses(connection: &mut PgConnection, size: SeedSize) -> anyhow::Result<u64> {
    let mut rows = String::new();
    for index in 1..=size.customers {
        let home = address(index);
        writeln!(
            rows,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            id("address", index),
            id("customer", index),
            home.label,
            home.line1,
            home.city,
            home.postal_code,
            home.location.lat,
            home.location.lng,
            home.size_m2,
            home.bedrooms,
            home.bathrooms,
            home.has_pets
        )?;
    }
    copy(
        connection,
        "COPY addresses (id, customer_id, label, line1, city, postal_code, lat, lng, size_m2, bedrooms, \
         bathrooms, has_pets) FROM STDIN",
        &rows,
    )
    .await?;
    Ok(size.customers)
}

/// Writes bookings, their payments and their reviews, each table in chunks.
async fn copy_bookings(
    connection: &mut PgConnection,
    size: SeedSize,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let mut written = 0;
    for table in ["bookings", "payments", "reviews"] {
        let statement = match table {
            "bookings" => {
                "COPY bookings (id, customer_id, cleaner_id, address_id, service, starts_at, ends_at, duration_min, \
                 price_cents, currency, status, actual_duration_min, idempotency_key, request_hash, version, \
                 created_at) FROM STDIN"
            }
            "payments" => {
                "COPY payments (id, booking_id, provider, provider_reference, amount_cents, currency, status, \
                 created_at) FROM STDIN"
            }
            _ => {
                "COPY reviews (booking_id, cleaner_id, customer_id, rating, comment, created_at) FROM STDIN"
            }
        };
        let mut start = 0;
        while start < size.bookings {
            let end = (start + CHUNK_ROWS).min(size.bookings);
            let mut rows = String::new();
            for index in start..end {
                let booking = booking(index, size);
                let ends_at =
                    booking.starts_at + Duration::minutes(i64::from(booking.duration_min));
                let customer = id("customer", booking.customer);
                let cleaner = id("cleaner", booking.cleaner);
                let created_at = booking.starts_at - Duration::days(3);
                match table {
                    "bookings" => writeln!(
                        rows,
                        "{}\t{customer}\t{cleaner}\t{}\t{}\t{}\t{ends_at}\t{}\t{}\t{CURRENCY}\tcompleted\t{}\tseed-{index}\t\\\\x00\t4\t{created_at}",
                        booking.id,
                        id("address", booking.customer),
                        booking.service,
                        booking.starts_at,
                        booking.duration_min,
                        booking.price_cents,
                        booking.actual_min,
                    )?,
                    "payments" => writeln!(
                        rows,
                        "{}\t{}\tfake\tseed_{index}\t{}\t{CURRENCY}\tcaptured\t{created_at}",
                        id("payment", index),
                        booking.id,
                        booking.price_cents
                    )?,
                    _ => {
                        if let Some(rating) = booking.rating {
                            writeln!(
                                rows,
                                "{}\t{cleaner}\t{customer}\t{rating}\t{}\t{}",
                                booking.id,
                                review_comment(rating),
                                ends_at + Duration::hours(5)
                            )?;
                            written += 1;
                        }
                    }
                }
            }
            copy(connection, statement, &rows).await?;
            if table != "reviews" {
                written += end - start;
            }
            progress.advance(end - start);
            start = end;
        }
    }
    Ok(written)
}

fn review_comment(rating: u8) -> &'static str {
    match rating {
        5 => "Spotless, thank you!",
        4 => "Very good, a couple of corners missed.",
        3 => "Fine, but it took a while.",
        2 => "Not great, several rooms were rushed.",
        _ => "Disappointing.",
    }
}

/// Writes the cleaners' profiles, with ratings summed from the reviews just written.
async fn copy_cleaner_profiles(
    connection: &mut PgConnection,
    size: SeedSize,
) -> anyhow::Result<u64> {
    let mut rows = String::new();
    for index in 1..=size.cleaners {
        let cleaner = cleaner(index);
        let services: Vec<&str> = cleaner
            .services
            .iter()
            .map(|service| service.as_str())
            .collect();
        let availability = serde_json::to_string(&cleaner.availability)?;
        let mut dice = Dice::for_row(AREA, index);
        let area = cleaner.home.displaced(dice.unit(), dice.unit());
        writeln!(
            rows,
            "{}\tExperienced and reliable, cleaning Berlin homes since {}.\t{}\t{CURRENCY}\t{{{}}}\t{}\t{}\t{}\t{}\t{}\t{availability}\tEurope/Berlin",
            id("cleaner", index),
            2015 + index % 9,
            cleaner.hourly_rate_cents,
            services.join(","),
            cleaner.home.lat,
            cleaner.home.lng,
            area.lat,
            area.lng,
            cleaner.radius_km,
        )?;
    }
    copy(
        connection,
        "COPY cleaner_profiles (cleaner_id, bio, hourly_rate_cents, currency, services, home_lat, home_lng, \
         area_lat, area_lng, service_radius_km, weekly_availability, timezone) FROM STDIN",
        &rows,
    )
    .await?;
    sqlx::query(
        "UPDATE cleaner_profiles p SET rating_sum = r.total, rating_count = r.reviews \
         FROM (SELECT cleaner_id, sum(rating) AS total, count(*) AS reviews FROM reviews GROUP BY cleaner_id) r \
         WHERE r.cleaner_id = p.cleaner_id",
    )
    .execute(connection)
    .await?;
    Ok(size.cleaners)
}

#[cfg(test)]
#[path = "seed_tests.rs"]
mod tests;

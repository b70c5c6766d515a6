//! Builds core from its settings and runs it: gRPC server, ops HTTP side, outbox relay.

use std::{sync::Arc, time::Duration};

use spruce_bus::OutboxRelay;
use spruce_platform::{
    auth::ServiceTokenSigner,
    grpc::{Access, Listeners, ServiceRpc},
};
use spruce_proto::core::v1::{
    address_service_server::AddressServiceServer, booking_service_server::BookingServiceServer,
    cleaner_service_server::CleanerServiceServer,
    read_model_service_server::ReadModelServiceServer, review_service_server::ReviewServiceServer,
    user_service_server::UserServiceServer,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::{
    grpc::{AddressApi, BookingApi, CleanerApi, ReadModelApi, ReviewApi, UserApi},
    passwords::PasswordHashing,
    payments::{FakeProvider, PaymentProvider, StripeProvider},
    settings::{PaymentProviderKind, Settings},
    store::MIGRATIONS,
    tokens::TokenIssuer,
    upstream::{DurationModel, SearchModel},
    usecases::{
        accounts::Accounts, addresses::Addresses, bookings::Bookings, cleaners::Cleaners,
        readmodel::ReadModels, reviews::Reviews,
    },
};

/// How often expired refresh tokens are deleted.
const SESSION_PRUNING_EVERY: Duration = Duration::from_secs(3_600);
/// How often stale booking holds and unconfirmed payment steps are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The gRPC services core serves, as the health service names them.
const SERVED: &[&str] = &[
    "spruce.core.v1.UserService",
    "spruce.core.v1.CleanerService",
    "spruce.core.v1.AddressService",
    "spruce.core.v1.BookingService",
    "spruce.core.v1.ReviewService",
    "spruce.core.v1.ReadModelService",
];

/// The RPCs a service may call on its own behalf. The gateway signs anonymous clients up
/// and in; search loads its read model; the scheduler assigns open bookings and expires
/// unconfirmed ones; every other call comes with the user's own access token.
const SERVICE_RPCS: &[ServiceRpc] = &[
    ServiceRpc {
        caller: "gateway",
        path: "/spruce.core.v1.UserService/Register",
    },
    ServiceRpc {
        caller: "gateway",
        path: "/spruce.core.v1.UserService/Authenticate",
    },
    ServiceRpc {
        caller: "gateway",
        path: "/spruce.core.v1.UserService/RefreshSession",
    },
    // A verification link opened without signing in.
    ServiceRpc {
        caller: "gateway",
        path: "/spruce.core.v1.UserService/VerifyEmail",
    },
    ServiceRpc {
        caller: "gateway",
        path: "/spruce.core.v1.UserService/RequestPasswordReset",
    },
    ServiceRpc {
        caller: "gateway",
        path: "/spruce.core.v1.UserService/ResetPassword",
    },
    ServiceRpc {
        caller: "search",
        path: "/spruce.core.v1.ReadModelService/StreamCleaners",
    },
    ServiceRpc {
        caller: "search",
        path: "/spruce.core.v1.ReadModelService/StreamBookingPairs",
    },
    ServiceRpc {
        caller: "search",
        path: "/spruce.core.v1.ReadModelService/StreamCompletedBookings",
    },
    ServiceRpc {
        caller: "scheduler",
        path: "/spruce.core.v1.BookingService/ListOpenBookings",
    },
    // Where a notification goes, for a user the scheduler has not heard of.
    ServiceRpc {
        caller: "scheduler",
        path: "/spruce.core.v1.UserService/GetUser",
    },
    ServiceRpc {
        caller: "scheduler",
        path: "/spruce.core.v1.BookingService/AssignBooking",
    },
    ServiceRpc {
        caller: "scheduler",
        path: "/spruce.core.v1.BookingService/AssignBookings",
    },
    ServiceRpc {
        caller: "scheduler",
        path: "/spruce.core.v1.BookingService/ExpireUnconfirmed",
    },
];

/// A built core service, its listeners bound.
pub struct Application {
    listeners: Listeners,
    pool: PgPool,
    settings: Settings,
    issuer: TokenIssuer,
    access: Access,
    payments: Arc<dyn PaymentProvider>,
    durations: Arc<dyn DurationModel>,
}

impl Application {
    /// Connects to the database (creating and migrating it where configured) and binds the
    /// listeners; port 0 picks a free port.
    ///
    /// # Errors
    /// Fails when the key, the database or a port is unusable.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let issuer = TokenIssuer::new(&settings.auth)?;
        let access = Access {
            verifier: settings.verifier()?,
            service_rpcs: SERVICE_RPCS,
            reflection: settings.grpc.reflection(),
        };
        let pool = spruce_db::connect_and_migrate(&settings.database, MIGRATIONS).await?;
        let listeners = Listeners::bind(&settings.grpc, &settings.common.http).await?;
        let stripe = &settings.payments.stripe;
        let payments: Arc<dyn PaymentProvider> = match settings.payments.provider {
            PaymentProviderKind::Fake => Arc::new(FakeProvider),
            PaymentProviderKind::Stripe => Arc::new(StripeProvider::new(
                &stripe.base_url,
                stripe.secret_key.clone(),
                stripe.timeout,
                stripe.retries,
            )?),
        };
        // Core calls search on its own behalf with the key it signs users' tokens with;
        // search knows its public half as `callers.service_keys.core`.
        let durations: Arc<dyn DurationModel> = Arc::new(SearchModel::new(
            &settings.search,
            ServiceTokenSigner::new("core", settings.auth.signing_key()?),
        )?);
        Ok(Application {
            payments,
            durations,
            listeners,
            pool,
            settings,
            issuer,
            access,
        })
    }

    /// Returns the bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.listeners.grpc_port()
    }

    /// Returns the bound HTTP (ops) port.
    pub fn http_port(&self) -> u16 {
        self.listeners.http_port()
    }

    /// Runs until `shutdown` is cancelled, then drains in-flight calls and stops the relay.
    ///
    /// # Errors
    /// Fails when a server fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let relay = OutboxRelay::new(
            self.pool.clone(),
            self.settings.bus.clone(),
            &self.settings.database.name,
        );
        // The broker is not a readiness check: bookings commit to the outbox while it is
        // away, and the relay publishes them when it returns.
        let checks = vec![spruce_db::readiness(self.pool.clone())];
        let relay_task = if self.settings.outbox.relay {
            Some(tokio::spawn(relay.run(shutdown.clone())))
        } else {
            tracing::warn!("the outbox relay is switched off: events stay in the outbox");
            None
        };
        let hashing = PasswordHashing::new(
            self.settings.auth.hashing_threads(),
            self.settings.auth.hashing_wait,
        )?;
        let accounts = Accounts::new(
            self.pool.clone(),
            self.issuer,
            self.settings.auth.refresh_token_ttl,
            hashing,
            self.settings
                .auth
                .dev_password_refused()
                .then_some(crate::seed::DEV_PASSWORD),
        );
        let pruning = tokio::spawn(
            accounts
                .clone()
                .prune_expired_sessions(SESSION_PRUNING_EVERY, shutdown.clone()),
        );
        let mut bookings = Bookings::new(self.pool.clone(), self.payments, self.durations);
        if !self.settings.auth.require_verified_email {
            bookings = bookings.without_email_verification();
        }
        let sweeping = tokio::spawn(
            bookings
                .clone()
                .sweep_until_stopped(SWEEP_EVERY, shutdown.clone()),
        );
        let pool = &self.pool;
        let flags = self.settings.common.flags();
        let routes = Routes::new(UserServiceServer::new(UserApi::new(
            accounts,
            bookings.clone(),
        )))
        .add_service(CleanerServiceServer::new(CleanerApi::new(Cleaners::new(
            pool.clone(),
        ))))
        .add_service(AddressServiceServer::new(AddressApi::new(Addresses::new(
            pool.clone(),
        ))))
        .add_service(BookingServiceServer::new(BookingApi::new(bookings, flags)))
        .add_service(ReviewServiceServer::new(ReviewApi::new(Reviews::new(
            pool.clone(),
        ))))
        .add_service(ReadModelServiceServer::new(ReadModelApi::new(
            ReadModels::new(pool.clone()),
        )));
        let served = self
            .listeners
            .serve(routes, SERVED, self.access, checks, shutdown.clone())
            .await;
        shutdown.cancel();
        if let Some(relay_task) = relay_task {
            relay_task.await.ok();
        }
        pruning.await.ok();
        sweeping.await.ok();
        self.pool.close().await;
        served
    }
}

spruce_platform::grpc_service!(Application, Settings);

//! Every gRPC call is authenticated by the service itself: identity metadata means nothing,
//! only a token signed by a key the service's settings name does, and a service token only
//! on the RPCs meant for that service.

use spruce_platform::keys;
use spruce_proto::{
    core::v1::{GetUserRequest, RegisterRequest, Role, user_service_client::UserServiceClient},
    scheduler::v1::{
        ListNotificationsRequest, notification_service_client::NotificationServiceClient,
    },
};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

use crate::helpers::{
    TestApp, service_token, sign, unique_email, user_claims, user_token, with_token,
};

async fn channel(url: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn register() -> RegisterRequest {
    RegisterRequest {
        email: unique_email(),
        password: "correct horse battery".to_owned(),
        full_name: "Ann Lee".to_owned(),
        role: Role::Customer.into(),
        timezone: String::new(),
        device: String::new(),
    }
}

fn get_user(user_id: Uuid) -> GetUserRequest {
    GetUserRequest {
        user_id: user_id.to_string(),
    }
}

#[tokio::test]
async fn forged_identity_metadata_without_a_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let session = app.signup(&unique_email()).await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let mut users = UserServiceClient::connect(app.core_url.clone())
        .await
        .unwrap();
    let mut forged = tonic::Request::new(GetUserRequest {
        user_id: user_id.to_owned(),
    });
    forged
        .metadata_mut()
        .insert("x-user-id", user_id.parse().unwrap());
    forged
        .metadata_mut()
        .insert("x-user-role", "admin".parse().unwrap());
    let status = users.get_user(forged).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut notifications = NotificationServiceClient::connect(app.scheduler_url.clone())
        .await
        .unwrap();
    let mut forged = tonic::Request::new(ListNotificationsRequest {
        user_id: user_id.to_owned(),
        limit: 10,
        cursor: String::new(),
    });
    forged
        .metadata_mut()
        .insert("x-user-id", user_id.parse().unwrap());
    forged
        .metadata_mut()
        .insert("x-user-role", "customer".parse().unwrap());
    let status = notifications.list_notifications(forged).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // The user's own token, forwarded as the gateway does, is what works.
    let token = session["access_token"].as_str().unwrap();
    let user = users
        .get_user(with_token(get_user(user_id.parse().unwrap()), token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.id, user_id);
}

#[tokio::test]
async fn tokens_signed_by_another_key_or_expired_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let mut users = UserServiceClient::connect(app.core_url.clone())
        .await
        .unwrap();
    let user_id = Uuid::new_v4();
    // A well-formed admin token, signed with the gateway's key instead of core's.
    let foreign = sign(
        keys::dev::GATEWAY_PRIVATE_KEY,
        &user_claims(user_id, "admin", 600),
        None,
    );
    let expired = sign(
        keys::dev::CORE_PRIVATE_KEY,
        &user_claims(user_id, "admin", -600),
        None,
    );
    for token in [foreign.as_str(), expired.as_str(), "not-a-jwt"] {
        let status = users
            .get_user(with_token(get_user(user_id), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token}");
    }
}

#[tokio::test]
async fn a_service_token_is_accepted_only_on_its_rpcs() {
    let app = TestApp::spawn().await;
    let mut users = UserServiceClient::connect(app.core_url.clone())
        .await
        .unwrap();
    let gateway = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "core");
    // The gateway signs anonymous clients up ...
    let created = users
        .register(with_token(register(), &gateway))
        .await
        .unwrap()
        .into_inner();
    let user_id: Uuid = created.user.unwrap().id.parse().unwrap();
    // ... but may not read a user on its own behalf.
    let status = users
        .get_user(with_token(get_user(user_id), &gateway))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // The scheduler may: a notification for a user it has not heard of goes where core says.
    let scheduler = service_token(keys::dev::SCHEDULER_PRIVATE_KEY, "scheduler", "core");
    let found = users
        .get_user(with_token(get_user(user_id), &scheduler))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id, user_id.to_string());
    let status = users
        .get_user(with_token(get_user(Uuid::new_v4()), &scheduler))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Search is a known service, but signing users up is not among its RPCs.
    let search = service_token(keys::dev::SEARCH_PRIVATE_KEY, "search", "core");
    let status = users
        .register(with_token(register(), &search))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // A token naming the gateway but signed with another key, an unknown service, and the
    // gateway's real token for search replayed at core.
    let impostor = service_token(keys::dev::SEARCH_PRIVATE_KEY, "gateway", "core");
    let stranger = service_token(keys::dev::SEARCH_PRIVATE_KEY, "billing", "core");
    let replayed = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "search");
    let shared = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "spruce-internal");
    for token in [impostor, stranger, replayed, shared] {
        let status = users
            .register(with_token(register(), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    // A user's token with the service role is not a service token.
    let pretender = sign(
        keys::dev::CORE_PRIVATE_KEY,
        &user_claims(user_id, "service", 600),
        None,
    );
    let status = users
        .get_user(with_token(get_user(user_id), &pretender))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn health_stays_open_to_probes() {
    let app = TestApp::spawn().await;
    for url in [app.core_url.clone(), app.scheduler_url.clone()] {
        let mut health = HealthClient::new(channel(url).await);
        let response = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap();
        assert_eq!(response.into_inner().status, 1, "SERVING");
    }
    // A valid user token still only gets the user's own rights.
    let mut users = UserServiceClient::connect(app.core_url.clone())
        .await
        .unwrap();
    let status = users
        .get_user(with_token(
            get_user(Uuid::new_v4()),
            &user_token("customer"),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// Asks core's reflection service, without a token, to list its services; the status code
/// when refused.
async fn reflected_services(core_url: String) -> Result<Vec<String>, Code> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(channel(core_url).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let response = client
        .server_reflection_info(futures_util::stream::iter([request]))
        .await;
    let mut stream = response.map_err(|status| status.code())?.into_inner();
    let answer = stream.message().await.map_err(|status| status.code())?;
    match answer.and_then(|answer| answer.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => Ok(list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect()),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn reflection_is_a_setting_and_open_only_where_served() {
    let app = TestApp::builder().core_reflection(true).spawn().await;
    let services = reflected_services(app.core_url.clone())
        .await
        .expect("reflection is served, without a token");
    assert!(
        services.contains(&"spruce.core.v1.UserService".to_owned()),
        "{services:?}"
    );

    // Switched off, it is one more RPC nobody may call without a token.
    let app = TestApp::builder().core_reflection(false).spawn().await;
    assert_eq!(
        reflected_services(app.core_url.clone()).await,
        Err(Code::Unauthenticated)
    );
}

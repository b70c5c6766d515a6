//! Core authenticates every call itself: identity metadata means nothing, only a token
//! signed by a key its settings name does, and a service token only on the RPCs meant for
//! that service.

use spruce_platform::{
    grpc::request_with_token as with_token,
    keys,
    testing::{service_token, sign, user_claims, user_token},
};
use spruce_proto::core::v1::{
    AuthenticateRequest, GetUserRequest, StreamCleanersRequest,
    read_model_service_client::ReadModelServiceClient, user_service_client::UserServiceClient,
};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

use spruce_core::testing::{TestCore, channel, register_request};

fn get_user(user_id: &str) -> GetUserRequest {
    GetUserRequest {
        user_id: user_id.to_owned(),
    }
}

#[tokio::test]
async fn forged_identity_metadata_without_a_token_is_unauthenticated() {
    let core = TestCore::start().await;
    let (user_id, token) = core.register().await;
    let mut users = UserServiceClient::connect(core.url.clone()).await.unwrap();
    let mut forged = tonic::Request::new(get_user(&user_id));
    forged
        .metadata_mut()
        .insert("x-user-id", user_id.parse().unwrap());
    forged
        .metadata_mut()
        .insert("x-user-role", "admin".parse().unwrap());
    let status = users.get_user(forged).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // The user's own token, forwarded as the gateway does, is what works.
    let user = users
        .get_user(with_token(get_user(&user_id), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.id, user_id);
}

#[tokio::test]
async fn tokens_signed_by_another_key_or_expired_are_unauthenticated() {
    let core = TestCore::start().await;
    let mut users = UserServiceClient::connect(core.url.clone()).await.unwrap();
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
            .get_user(with_token(get_user(&user_id.to_string()), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token}");
    }
}

#[tokio::test]
async fn a_service_token_is_accepted_only_on_its_rpcs() {
    let core = TestCore::start().await;
    let mut users = UserServiceClient::connect(core.url.clone()).await.unwrap();
    let gateway = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "core");
    // The gateway signs anonymous clients up ...
    let (user_id, _) = core.register().await;
    // ... but may not read a user on its own behalf.
    let status = users
        .get_user(with_token(get_user(&user_id), &gateway))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // The scheduler may: a notification for a user it has not heard of goes where core says.
    let scheduler = service_token(keys::dev::SCHEDULER_PRIVATE_KEY, "scheduler", "core");
    let found = users
        .get_user(with_token(get_user(&user_id), &scheduler))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.id, user_id);
    let status = users
        .get_user(with_token(
            get_user(&Uuid::new_v4().to_string()),
            &scheduler,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Search is a known service, but signing users up is not among its RPCs.
    let search = service_token(keys::dev::SEARCH_PRIVATE_KEY, "search", "core");
    let status = users
        .register(with_token(register_request(), &search))
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
            .register(with_token(register_request(), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    // A user's token with the service role is not a service token.
    let pretender = sign(
        keys::dev::CORE_PRIVATE_KEY,
        &user_claims(user_id.parse().unwrap(), "service", 600),
        None,
    );
    let status = users
        .get_user(with_token(get_user(&user_id), &pretender))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn health_stays_open_to_probes() {
    let core = TestCore::start().await;
    let mut health = HealthClient::new(channel(core.url.clone()).await);
    let response = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, 1, "SERVING");
    // A valid user token still only gets the user's own rights.
    let mut users = UserServiceClient::connect(core.url.clone()).await.unwrap();
    let status = users
        .get_user(with_token(
            get_user(&Uuid::new_v4().to_string()),
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
    let core = TestCore::with(|settings| settings.grpc.reflection = Some(true)).await;
    let services = reflected_services(core.url.clone())
        .await
        .expect("reflection is served, without a token");
    assert!(
        services.contains(&"spruce.core.v1.UserService".to_owned()),
        "{services:?}"
    );

    // Switched off, it is one more RPC nobody may call without a token.
    let core = TestCore::with(|settings| settings.grpc.reflection = Some(false)).await;
    assert_eq!(
        reflected_services(core.url.clone()).await,
        Err(Code::Unauthenticated)
    );
}

#[tokio::test]
async fn only_search_loads_the_read_model_snapshot() {
    let core = TestCore::start().await;
    let mut client = ReadModelServiceClient::new(channel(core.url.clone()).await);
    let (_, user) = core.register().await;
    let gateway = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "core");
    for (token, who) in [(user, "a user"), (gateway, "the gateway")] {
        let refused = client
            .stream_cleaners(with_token(StreamCleanersRequest {}, &token))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{who}");
    }
    let refused = client
        .stream_cleaners(StreamCleanersRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let search = service_token(keys::dev::SEARCH_PRIVATE_KEY, "search", "core");
    client
        .stream_cleaners(with_token(StreamCleanersRequest {}, &search))
        .await
        .expect("search loads the snapshot");
}

#[tokio::test]
async fn control_characters_sent_straight_over_grpc_are_invalid_not_a_failure() {
    let core = TestCore::start().await;
    let mut users = UserServiceClient::new(channel(core.url.clone()).await);
    let gateway = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "core");
    let status = users
        .authenticate(with_token(
            AuthenticateRequest {
                email: "ann\0@example.com".to_owned(),
                password: "correct horse battery".to_owned(),
                device: String::new(),
            },
            &gateway,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

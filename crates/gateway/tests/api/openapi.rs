//! The OpenAPI document: valid OpenAPI 3.1, and every documented operation is served.

use std::process::Command;

use serde_json::Value;

use crate::helpers::TestGateway;

#[tokio::test]
async fn every_documented_operation_is_served_and_the_document_is_valid_openapi_3_1() {
    let app = TestGateway::without_services().await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");

    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                operation["responses"].as_object().unwrap().len() >= 2,
                "{method} {path} documents its errors"
            );
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{action}", "confirm")
                .replace("{name}", "auto-assign")
                .replace("{kind}", "passport");
            let url = format!("{}{concrete}", app.address);
            let request = match method.as_str() {
                "get" => app.client.get(url),
                "post" => app.client.post(url),
                "put" => app.client.put(url),
                "delete" => app.client.delete(url),
                other => panic!("unexpected method {other}"),
            };
            // Unauthenticated and without a body, a served route answers 400, 401, 422 or
            // 503; only a route that does not exist says 404 or 405. Public files are the
            // exception: there an unknown one is a 404 (the files tests read a known one).
            if path.starts_with("/v1/files/") {
                continue;
            }
            let status = request.send().await.unwrap().status().as_u16();
            assert!(
                ![404, 405].contains(&status),
                "{method} {path} is documented but answered {status}"
            );
        }
    }
    assert_eq!(operations, 41, "every /v1 operation is in the document");

    let file = std::env::temp_dir().join(format!("spruce-openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let validation = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    std::fs::remove_file(&file).ok();
    assert!(
        validation.status.success(),
        "the document is not valid OpenAPI (needs `pip install openapi-spec-validator`, which make test does): {}{}",
        String::from_utf8_lossy(&validation.stdout),
        String::from_utf8_lossy(&validation.stderr)
    );
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_by_the_gateway() {
    let app = TestGateway::without_services().await;
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"));
    assert!(!html.contains("https://"), "no assets from a CDN");
    let bundle = app.get("/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
    let initializer = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"));
}

#[tokio::test]
async fn every_error_answer_is_documented_as_a_problem() {
    let app = TestGateway::without_services().await;
    let document: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let problem = &document["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "detail"] {
        assert!(problem["properties"][field].is_object(), "Problem.{field}");
    }
    // The documented kinds of cleaning are the ones core and search know.
    assert_eq!(
        document["components"]["schemas"]["ServiceKind"]["enum"],
        serde_json::json!(spruce_domain::pricing::SERVICES)
    );
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
            assert!(statuses.contains(&"503"), "{method} {path}: {statuses:?}");
            if operation.get("security").is_some() {
                assert!(statuses.contains(&"401"), "{method} {path}: {statuses:?}");
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(statuses.contains(&status), "{method} {path}: {statuses:?}");
                }
            }
            for (status, response) in responses {
                if status.starts_with('2') {
                    continue;
                }
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                if status == "429" || status == "503" {
                    assert!(
                        response["headers"]["Retry-After"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_committed_document_is_the_one_served() {
    let app = TestGateway::without_services().await;
    let served: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        served == committed,
        "docs/openapi.json is not what the gateway serves: run `make openapi` and commit it"
    );
}

//! Every decision of a pass, against a scripted API server: the exact requests it makes for
//! a missing Secret, a conflict, an adoption, an immutable Secret, drift, and each refusal.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use kube::runtime::controller::Action;
use seal_shared::keys::SealIdentity;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::unseal::reconcile;

fn decoded(value: &Value) -> String {
    let bytes = STANDARD
        .decode(value.as_str().expect("a base64 string"))
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

fn ready(status: &Value) -> (String, String) {
    let condition = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .expect("a Ready condition");
    (
        condition["status"].as_str().unwrap_or_default().to_owned(),
        condition["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

struct Scenario {
    identity: SealIdentity,
}

impl Scenario {
    fn new() -> Scenario {
        Scenario {
            identity: SealIdentity::generate(),
        }
    }

    fn sealed(&self, items: &[(&str, &str)]) -> seal_shared::sealed_secret::SealedSecret {
        sealed_secret(items, &self.identity.recipient())
    }
}

/// Runs one pass over `sealed` while `script` plays the API server; answers the pass's result.
macro_rules! pass {
    ($keys:expr, $sealed:expr, |$server:ident| $script:block) => {{
        let (ctx, mut $server, _leading) = context($keys);
        let task = tokio::spawn(reconcile(cached(&$sealed), ctx));
        $script
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the pass made a request the script did not expect")
            .expect("the pass panicked")
    }};
}

#[tokio::test]
async fn a_missing_secret_is_created_owned_and_labelled() {
    let s = Scenario::new();
    let sealed = s.sealed(&[("password", "hunter2")]);
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(None).await;
        let (call, respond) = server
            .expect(
                Method::POST,
                &format!("/api/v1/namespaces/{NAMESPACE}/secrets"),
            )
            .await;
        assert!(
            call.accept.contains("as=PartialObjectMetadata"),
            "{}",
            call.accept
        );
        assert!(
            call.query.contains("fieldManager=seal-operator"),
            "{}",
            call.query
        );
        let body = &call.body;
        assert_eq!(decoded(&body["data"]["password"]), "hunter2");
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], UID);
        assert_eq!(body["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            body["metadata"]["labels"]["seal.dev/managed-by"],
            "seal-operator"
        );
        assert_eq!(body["metadata"]["labels"]["app"], "shop");
        assert!(body["metadata"].get("resourceVersion").is_none());
        respond.json(201, written_metadata("8"));
        assert_eq!(server.take_event().await["reason"], "Unsealed");
        let status = server.take_status(&sealed).await;
        assert_eq!(ready(&status), ("True".into(), "Unsealed".into()));
    });
    assert_eq!(result.expect("a pass"), Action::await_change());
}

#[tokio::test]
async fn a_secret_someone_else_owns_is_left_alone_and_looked_at_again() {
    let s = Scenario::new();
    let sealed = s.sealed(&[("password", "hunter2")]);
    let theirs: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": "4"},
        "data": {"password": STANDARD.encode("theirs")},
    }))
    .expect("a Secret");
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(Some(&theirs)).await;
        let event = server.take_event().await;
        assert_eq!(
            (event["type"].as_str(), event["reason"].as_str()),
            (Some("Warning"), Some("SecretConflict"))
        );
        assert!(
            event["note"]
                .as_str()
                .unwrap_or_default()
                .contains("seal.dev/managed")
        );
        let status = server.take_status(&sealed).await;
        assert_eq!(ready(&status), ("False".into(), "SecretConflict".into()));
    });
    assert_eq!(
        result.expect("a pass"),
        Action::requeue(crate::decision::CONFLICT_RETRY)
    );
}

#[tokio::test]
async fn a_repeated_failure_adds_no_event_and_no_status_write() {
    let s = Scenario::new();
    let mut sealed = s.sealed(&[("password", "hunter2")]);
    let theirs: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": "4"},
    }))
    .expect("a Secret");
    // The first pass's status, as the object now carries it.
    let first = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(Some(&theirs)).await;
        server.take_event().await;
        let status = server.take_status(&sealed).await;
        sealed.status = Some(serde_json::from_value(status).expect("a status"));
    });
    first.expect("a pass");
    let again = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(Some(&theirs)).await;
    });
    assert_eq!(
        again.expect("a pass"),
        Action::requeue(crate::decision::CONFLICT_RETRY)
    );
}

#[tokio::test]
async fn consent_on_the_secret_is_an_adoption_in_one_guarded_patch() {
    let s = Scenario::new();
    let sealed = s.sealed(&[("password", "hunter2")]);
    let consenting: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": "4",
                     "annotations": {"seal.dev/managed": "true"}},
        "data": {"password": STANDARD.encode("old"), "extra": STANDARD.encode("x")},
    }))
    .expect("a Secret");
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(Some(&consenting)).await;
        let (call, respond) = server.expect(Method::PATCH, &secret_path()).await;
        assert_eq!(call.content_type, "application/merge-patch+json");
        let body = &call.body;
        assert_eq!(body["metadata"]["resourceVersion"], "4");
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], UID);
        assert_eq!(
            body["metadata"]["ownerReferences"].as_array().map(Vec::len),
            Some(1)
        );
        assert!(body["metadata"]["annotations"]["seal.dev/managed"].is_null());
        assert!(
            body["data"]["extra"].is_null(),
            "a foreign key stays: {body}"
        );
        assert_eq!(decoded(&body["data"]["password"]), "hunter2");
        respond.json(200, written_metadata("5"));
        let adopted = server.take_event().await;
        assert_eq!(adopted["reason"], "Adopted");
        assert!(
            adopted["note"]
                .as_str()
                .unwrap_or_default()
                .contains("no controller")
        );
        assert_eq!(server.take_event().await["reason"], "Unsealed");
        server.take_status(&sealed).await;
    });
    result.expect("a pass");
}

#[tokio::test]
async fn an_immutable_secret_with_other_data_is_replaced_as_read() {
    let s = Scenario::new();
    let sealed = s.sealed(&[("password", "new")]);
    let mut frozen = owned_secret(&sealed, &[("password", "old")]);
    frozen.immutable = Some(true);
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(Some(&frozen)).await;
        let (call, respond) = server.expect(Method::DELETE, &secret_path()).await;
        assert_eq!(
            call.body["preconditions"],
            json!({"uid": "s-1", "resourceVersion": "7"})
        );
        respond.json(
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
        let (call, respond) = server
            .expect(
                Method::POST,
                &format!("/api/v1/namespaces/{NAMESPACE}/secrets"),
            )
            .await;
        assert_eq!(decoded(&call.body["data"]["password"]), "new");
        respond.json(201, written_metadata("9"));
        server.take_event().await;
        server.take_status(&sealed).await;
    });
    result.expect("a pass");
}

#[tokio::test]
async fn drift_is_undone_and_an_exact_secret_is_not_written() {
    let s = Scenario::new();
    let sealed = s.sealed(&[("password", "hunter2")]);
    let mut drifted = owned_secret(&sealed, &[("password", "hunter2"), ("added", "x")]);
    drifted
        .metadata
        .labels
        .get_or_insert_default()
        .insert("team".into(), "x".into());
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(Some(&drifted)).await;
        let (call, respond) = server.expect(Method::PATCH, &secret_path()).await;
        assert!(call.body["data"]["added"].is_null());
        assert!(call.body["metadata"]["labels"]["team"].is_null());
        assert_eq!(call.body["metadata"]["resourceVersion"], "7");
        respond.json(200, written_metadata("8"));
        server.take_event().await;
        server.take_status(&sealed).await;
    });
    result.expect("a pass");

    let exact = owned_secret(&sealed, &[("password", "hunter2")]);
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(Some(&exact)).await;
        // No write: first the news that it is Ready, then the status.
        assert_eq!(server.take_event().await["reason"], "Unsealed");
        let status = server.take_status(&sealed).await;
        assert!(
            status["lastUnsealed"].is_null(),
            "nothing was written: {status}"
        );
    });
    result.expect("a pass");
}

#[tokio::test]
async fn a_secret_that_appeared_meanwhile_is_not_overwritten() {
    let s = Scenario::new();
    let sealed = s.sealed(&[("password", "hunter2")]);
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(None).await;
        let (_, respond) = server
            .expect(
                Method::POST,
                &format!("/api/v1/namespaces/{NAMESPACE}/secrets"),
            )
            .await;
        respond.fail(409, "AlreadyExists", "secrets \"db\" already exists");
    });
    assert!(result.is_err(), "a conflict is retried with back-off");
}

#[tokio::test]
async fn refusals_name_their_reason_and_when_to_look_again() {
    let s = Scenario::new();
    let other = SealIdentity::generate();

    // Sealed to a key this cluster does not hold: no Secret is read.
    let sealed = s.sealed(&[("password", "hunter2")]);
    let result = pass!(key_set(&other), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        assert_eq!(server.take_event().await["reason"], "NoMatchingKey");
        let status = server.take_status(&sealed).await;
        assert_eq!(ready(&status), ("False".into(), "NoMatchingKey".into()));
    });
    assert_eq!(
        result.expect("a pass"),
        Action::requeue(crate::decision::MISSING_KEY_RETRY)
    );

    // An item moved to another key, and an altered ciphertext: wait for a change.
    let mut moved = s.sealed(&[("password", "hunter2")]);
    let item = moved
        .spec
        .encrypted_data
        .remove("password")
        .expect("an item");
    moved.spec.encrypted_data.insert("username".into(), item);
    let mut tampered = s.sealed(&[("password", "hunter2")]);
    let mut bytes = STANDARD
        .decode(&tampered.spec.encrypted_data["password"])
        .expect("base64");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    tampered
        .spec
        .encrypted_data
        .insert("password".into(), STANDARD.encode(bytes));
    for (sealed, reason) in [(moved, "BindingMismatch"), (tampered, "DecryptFailed")] {
        let result = pass!(key_set(&s.identity), sealed, |server| {
            server.serve_sealed_secret(&sealed).await;
            let event = server.take_event().await;
            assert_eq!(event["reason"], reason, "{event}");
            let status = server.take_status(&sealed).await;
            assert_eq!(ready(&status), ("False".into(), reason.into()));
        });
        assert_eq!(result.expect("a pass"), Action::await_change(), "{reason}");
    }

    // The API server refuses the Secret itself.
    let sealed = s.sealed(&[("password", "hunter2")]);
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        server.serve_secret(None).await;
        let (_, respond) = server
            .expect(
                Method::POST,
                &format!("/api/v1/namespaces/{NAMESPACE}/secrets"),
            )
            .await;
        respond.fail(
            422,
            "Invalid",
            "Secret \"db\" is invalid: data[tls.crt]: Required value",
        );
        let event = server.take_event().await;
        assert_eq!(event["reason"], "InvalidSpec");
        assert!(
            event["note"]
                .as_str()
                .unwrap_or_default()
                .contains("tls.crt")
        );
        server.take_status(&sealed).await;
    });
    assert_eq!(result.expect("a pass"), Action::await_change());
}

#[tokio::test]
async fn nothing_may_forge_or_touch_a_key_secret() {
    let s = Scenario::new();
    let mut labelled = s.sealed(&[("identity", "AGE-SECRET-KEY-1FORGED")]);
    labelled
        .spec
        .template
        .metadata
        .labels
        .insert("seal.dev/key".into(), "true".into());
    let mut typed = s.sealed(&[("identity", "x")]);
    typed.spec.template.type_ = Some("seal.dev/age-key".into());
    for (sealed, what) in [(labelled, "seal.dev/key"), (typed, "seal.dev/age-key")] {
        let result = pass!(key_set(&s.identity), sealed, |server| {
            server.serve_sealed_secret(&sealed).await;
            server.serve_secret(None).await;
            let event = server.take_event().await;
            assert_eq!(event["reason"], "InvalidSpec");
            assert!(
                event["note"].as_str().unwrap_or_default().contains(what),
                "{event}"
            );
            server.take_status(&sealed).await;
        });
        assert_eq!(result.expect("a pass"), Action::await_change());
    }

    // An existing key Secret is never written or deleted, adopt annotation or not.
    let mut adopting = s.sealed(&[("identity", "x")]);
    adopting
        .metadata
        .annotations
        .get_or_insert_default()
        .insert("seal.dev/adopt-existing-secret".into(), "true".into());
    let key: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": "2",
                     "labels": {"seal.dev/key": "true"},
                     "annotations": {"seal.dev/managed": "true"}},
        "type": "seal.dev/age-key", "immutable": true,
    }))
    .expect("a Secret");
    let result = pass!(key_set(&s.identity), adopting, |server| {
        server.serve_sealed_secret(&adopting).await;
        server.serve_secret(Some(&key)).await;
        let event = server.take_event().await;
        assert!(
            event["note"]
                .as_str()
                .unwrap_or_default()
                .contains("is a key Secret"),
            "{event}"
        );
        server.take_status(&adopting).await;
    });
    assert_eq!(result.expect("a pass"), Action::await_change());
}

#[tokio::test]
async fn names_from_the_sealed_secret_reach_events_escaped() {
    let s = Scenario::new();
    let mut sealed = s.sealed(&[("password", "hunter2")]);
    // An item moved under a key with ESC and a newline: refused, and nothing raw may reach
    // the Event or the status (the key is shown escaped).
    let forged = "pass\u{1b}[2J\nseal: ok";
    let item = sealed
        .spec
        .encrypted_data
        .remove("password")
        .expect("an item");
    sealed.spec.encrypted_data.insert(forged.into(), item);
    let result = pass!(key_set(&s.identity), sealed, |server| {
        server.serve_sealed_secret(&sealed).await;
        let event = server.take_event().await;
        let note = event["note"].as_str().unwrap_or_default().to_owned();
        assert!(!note.contains('\u{1b}') && !note.contains('\n'), "{note:?}");
        let status = server.take_status(&sealed).await;
        for condition in status["conditions"].as_array().into_iter().flatten() {
            let message = condition["message"].as_str().unwrap_or_default();
            assert!(
                !message.contains('\u{1b}') && !message.contains('\n'),
                "{message:?}"
            );
            assert!(
                message.contains("\\u{1b}"),
                "not shown escaped: {message:?}"
            );
        }
    });
    result.expect("a pass");
}

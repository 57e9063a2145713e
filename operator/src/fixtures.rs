//! Test scenarios for the reconciler against a scripted API server: each test lists, in
//! order, the requests one pass must make and the answer to each. A request the script does
//! not expect, or one it expects that never comes, fails the test.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::core::PartialObjectMetaExt;
use kube::{Client, Resource};
use seal_shared::keys::{SealIdentity, SealRecipient};
use seal_shared::sealed_secret::{SealedSecret, seal_items_into};
use serde_json::{Value, json};
use tower_test::mock::{self, Handle, SendResponse};

use crate::audit::Audit;
use crate::context::{CachedSealedSecret, Context};
use crate::keys::{KeyInfo, KeySet, KeyState, Keys};
use crate::lease::Leadership;
use crate::metrics::Metrics;

pub const NAMESPACE: &str = "app";
pub const NAME: &str = "db";
pub const UID: &str = "5b7e4f0e-1f3a-4c55-9b0c-8d1f2b3c4d5e";

/// One request as the API server received it.
pub struct Call {
    pub query: String,
    pub accept: String,
    pub content_type: String,
    pub body: Value,
}

pub struct Responder(SendResponse<Response<Body>>);

impl Responder {
    pub fn json(self, status: u16, body: Value) {
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).expect("json")))
            .expect("a response");
        self.0.send_response(response);
    }

    /// A Kubernetes `Status` failure.
    pub fn fail(self, code: u16, reason: &str, message: &str) {
        self.json(
            code,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": reason, "message": message, "code": code}),
        );
    }
}

pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
}

impl ApiServer {
    /// The next request, which must be `method` on `path` (the URL without its query).
    pub async fn expect(&mut self, method: Method, path: &str) -> (Call, Responder) {
        let next = tokio::time::timeout(Duration::from_secs(5), self.handle.next_request());
        let (request, send) = next
            .await
            .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
            .unwrap_or_else(|| panic!("the client went away; expected {method} {path}"));
        let (parts, body) = request.into_parts();
        assert_eq!(
            (&parts.method, parts.uri.path()),
            (&method, path),
            "unexpected request"
        );
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let bytes = body.collect_bytes().await.expect("a request body");
        let call = Call {
            query: parts.uri.query().unwrap_or_default().to_owned(),
            accept: header("accept"),
            content_type: header("content-type"),
            body: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("a JSON request body")
            },
        };
        (call, Responder(send))
    }

    /// The watch-cache read of the SealedSecret, answered with `sealed`.
    pub async fn serve_sealed_secret(&mut self, sealed: &SealedSecret) {
        let (call, respond) = self.expect(Method::GET, &sealed_path()).await;
        assert!(call.query.contains("resourceVersion=0"), "{}", call.query);
        respond.json(200, serde_json::to_value(sealed).expect("json"));
    }

    /// The read of the Secret, answered with `secret` or a 404.
    pub async fn serve_secret(&mut self, secret: Option<&Secret>) {
        let (_, respond) = self.expect(Method::GET, &secret_path()).await;
        match secret {
            Some(secret) => respond.json(200, serde_json::to_value(secret).expect("json")),
            None => respond.fail(404, "NotFound", "secrets \"db\" not found"),
        }
    }

    /// An Event, answered as created; returns it.
    pub async fn take_event(&mut self) -> Value {
        let path = format!("/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events");
        let (call, respond) = self.expect(Method::POST, &path).await;
        respond.json(201, call.body.clone());
        call.body
    }

    /// The status patch; returns the status it sets.
    pub async fn take_status(&mut self, sealed: &SealedSecret) -> Value {
        let (call, respond) = self
            .expect(Method::PATCH, &format!("{}/status", sealed_path()))
            .await;
        respond.json(200, serde_json::to_value(sealed).expect("json"));
        call.body["status"].clone()
    }
}

pub fn sealed_path() -> String {
    format!("/apis/seal.dev/v1/namespaces/{NAMESPACE}/sealedsecrets/{NAME}")
}

pub fn secret_path() -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/secrets/{NAME}")
}

/// What the API server answers a metadata-only write with.
pub fn written_metadata(version: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": version}})
}

/// A key the operator holds, and the set it belongs to.
pub fn key_set(identity: &SealIdentity) -> KeySet {
    key_set_of(&[identity])
}

/// The set of these keys, all active.
pub fn key_set_of(identities: &[&SealIdentity]) -> KeySet {
    let mut set = KeySet::default();
    for identity in identities {
        set.ring
            .insert(SealIdentity::from_identity(identity.identity.clone()));
        set.infos.push(KeyInfo {
            id: identity.id,
            recipient: identity.recipient().recipient.to_string(),
            created: jiff::Timestamp::UNIX_EPOCH,
            state: KeyState::Active,
            secret_name: format!("seal-key-{}", identity.id),
            answers: None,
            retired_at: None,
            delete_after: None,
            uid: None,
            version: None,
        });
    }
    set
}

/// A stored SealedSecret (uid, generation 1) whose items are sealed to `recipient`.
pub fn sealed_secret(items: &[(&str, &str)], recipient: &SealRecipient) -> SealedSecret {
    let mut sealed: SealedSecret = serde_json::from_value(json!({
        "apiVersion": "seal.dev/v1",
        "kind": "SealedSecret",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": UID, "generation": 1,
                     "resourceVersion": "3"},
        "spec": {"encryptedData": {}, "template": {"metadata": {"labels": {"app": "shop"}}}},
    }))
    .expect("a SealedSecret");
    let items = items.iter().map(|(k, v)| (*k, v.as_bytes()));
    seal_items_into(&mut sealed, items, std::slice::from_ref(recipient)).expect("sealed");
    sealed
}

/// The cached form the controller hands to the reconciler.
pub fn cached(sealed: &SealedSecret) -> Arc<CachedSealedSecret> {
    let metadata = sealed.meta().clone();
    Arc::new(metadata.into_request_partial::<SealedSecret>())
}

/// A Secret as this SealedSecret's pass would have written it, at version "7".
pub fn owned_secret(sealed: &SealedSecret, data: &[(&str, &str)]) -> Secret {
    let owner = sealed
        .controller_owner_ref(&())
        .expect("an owner reference");
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(v);
            ((*k).to_owned(), Value::String(encoded))
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "s-1", "resourceVersion": "7",
                     "labels": {"app": "shop", "seal.dev/managed-by": "seal-operator"},
                     "ownerReferences": [owner]},
        "type": "Opaque",
        "data": data,
    }))
    .expect("a Secret")
}

/// A Context whose client talks to the returned scripted server; it leads.
pub fn context(keys: KeySet) -> (Arc<Context>, ApiServer, tokio::sync::watch::Sender<bool>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NAMESPACE);
    let held = Arc::new(Keys::default());
    held.replace(keys);
    let (leading, sender) = Leadership::always();
    let audit = Arc::new(Audit::new(client.clone(), "seal-system", "test".into()));
    let ctx = Context::new(
        client,
        held,
        audit,
        Arc::new(Metrics::default()),
        leading,
        "seal-system",
        Arc::default(),
    );
    (Arc::new(ctx), ApiServer { handle }, sender)
}

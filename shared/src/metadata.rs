//! Object metadata that a Secret read back from a cluster carries but a sealed template must
//! not: what the API server, kubectl and seal-operator write for their own bookkeeping.
//! `kubectl get secret db -o yaml | seal encrypt` is how an existing Secret gets sealed, and
//! kubectl's last-applied annotation holds every value of the Secret in plain text.

/// Label on every Secret seal-operator writes from a SealedSecret; the operator watches only
/// Secrets carrying it. Users and the chart rely on it: keep it stable.
pub const MANAGED_BY: &str = "seal.dev/managed-by";
pub const MANAGED_BY_VALUE: &str = "seal-operator";

/// kubectl's copy of the last applied object, values included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `metadata` fields set by the API server or its clients, never by the author of a Secret.
/// Dropped when sealing.
pub const SERVER_FIELDS: [&str; 10] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "ownerReferences",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
];

/// Annotations dropped when sealing.
pub const BOOKKEEPING_ANNOTATIONS: [&str; 1] = [LAST_APPLIED];

/// Labels dropped when sealing: the operator sets its own on the Secret it writes.
pub const BOOKKEEPING_LABELS: [&str; 1] = [MANAGED_BY];

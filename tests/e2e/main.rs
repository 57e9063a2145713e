//! End-to-end tests against the real kube-apiserver + etcd from `tests/cluster/cluster up`.

mod adoption;
mod argocd_health;
mod availability;
mod chart;
mod cli;
mod disaster_recovery;
mod drift;
mod header_flood;
mod import_bitnami;
mod key_backup;
mod key_lifecycle;
mod key_protection;
mod key_retire;
mod kubectl_get;
mod kubectl_plugin;
mod leadership;
mod observability;
mod operator;
mod reseal;
mod rotation;
mod sentinel;
mod smoke;

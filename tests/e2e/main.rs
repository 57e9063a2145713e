//! End-to-end tests against the real kube-apiserver + etcd from `tests/cluster/cluster up`.

mod adoption;
mod availability;
mod chart;
mod cli;
mod drift;
mod import_bitnami;
mod key_backup;
mod key_lifecycle;
mod key_protection;
mod kubectl_get;
mod leadership;
mod observability;
mod operator;
mod rotation;
mod smoke;

//! End-to-end tests against the real kube-apiserver + etcd from `tests/cluster/cluster up`.

mod availability;
mod chart;
mod header_flood;
mod operator;
mod rotation;
mod smoke;

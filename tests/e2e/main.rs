//! End-to-end tests against the real kube-apiserver + etcd from `tests/cluster/cluster up`.

mod availability;
mod chart;
mod cli;
mod operator;
mod rotation;
mod smoke;

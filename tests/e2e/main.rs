//! End-to-end tests against the real kube-apiserver + etcd from `tests/cluster/cluster up`.

mod adoption;
mod availability;
mod chart;
mod cli;
mod drift;
mod kubectl_get;
mod leadership;
mod operator;
mod rotation;
mod smoke;

//! Tests that run the built `seal` binary, as users do. One test binary, many modules.

mod bitnami;
mod errors;
mod interop;
mod leaks;
mod manifests;
mod merge;
mod recipients;
mod refusals;
mod roundtrip;
mod support;
mod writes;

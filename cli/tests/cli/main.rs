//! Tests that run the built `seal` binary, as users do. One test binary, many modules.

mod bitnami;
mod bounds;
mod errors;
mod interop;
mod leaks;
mod literal;
mod manifests;
mod many;
mod merge;
mod recipients;
mod refusals;
mod reseal;
mod roundtrip;
mod show;
mod support;
mod vectors;
mod verify;
mod writes;

//! Tests that run the built `seal` binary, as users do. One test binary, many modules.

mod errors;
mod interop;
mod merge;
mod recipients;
mod roundtrip;
mod support;

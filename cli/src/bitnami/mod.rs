//! Reading Bitnami sealed-secrets files and their controller's keys, for `seal import
//! bitnami`. All RSA code of seal lives here, in the CLI: neither the shared library nor
//! the operator depends on it.

pub mod crypto;
pub mod keys;
pub mod object;

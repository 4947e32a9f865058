//! libmvsmtp: an SMTP client (RFC 5321) with a C interface, built to be loaded into
//! MultiValue database processes and called from their BASIC, from C and from Python.
//!
//! The crate has two layers. [`ffi`] is the C interface: it checks pointers, guards against
//! panics, maps errors to status codes and keeps each thread's last result. Everything else
//! is the engine, plain Rust with no C types:
//!
//! - [`request`] validates the arguments of one send before anything touches the network;
//! - [`address`] parses envelope addresses and MultiValue recipient lists;
//! - [`session`] runs the SMTP conversation over a [`transport::Connection`];
//! - [`command`], [`reply`] and [`capability`] model what goes over the wire;
//! - [`data`] encodes the message body (line endings, marks, dot-stuffing);
//! - [`transcript`] records the conversation without the body.
//!
//! The `cbindgen:ignore` marks keep the engine's constants out of the C header.

/// cbindgen:ignore
pub mod address;
/// cbindgen:ignore
pub mod auth;
/// cbindgen:ignore
pub mod audit;
/// cbindgen:ignore
pub mod capability;
/// cbindgen:ignore
pub mod command;
/// cbindgen:ignore
pub mod compose;
/// cbindgen:ignore
pub mod data;
/// cbindgen:ignore
pub mod error;
pub mod ffi;
/// cbindgen:ignore
pub mod options;
/// cbindgen:ignore
pub mod profile;
/// cbindgen:ignore
pub mod reply;
/// cbindgen:ignore
pub mod request;
/// cbindgen:ignore
pub mod secret;
/// cbindgen:ignore
pub mod session;
/// cbindgen:ignore
pub mod tls;
/// cbindgen:ignore
pub mod transcript;
/// cbindgen:ignore
pub mod transport;

pub use error::Error;

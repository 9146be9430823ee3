//! kefu's gRPC API: the generated `kefu.v1` code, the services, command handling,
//! authentication and the mapping of every error to a status.
//!
//! Architecture invariant: only this crate knows protobuf. Services convert requests
//! into domain commands in `convert`, run them through `commands`, and map every
//! failure through `error` — one exhaustive match, so a caller's mistake is never
//! `INTERNAL`.

pub mod access;
pub mod auth;
pub mod call;
pub mod casefile;
mod commands;
mod convert;
pub mod describe;
pub mod error;
mod feed;
pub mod holdings;
pub mod inproc;
pub mod policies;
mod server;
mod services;
mod withheld;

/// The generated `kefu.v1` messages, clients and servers.
#[allow(clippy::all, clippy::pedantic, missing_debug_implementations, unused_qualifications)]
pub mod pb {
    tonic::include_proto!("kefu.v1");

    /// The encoded descriptors of every kefu proto, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/kefu_descriptor.bin"));
}

pub use commands::{event_id, Clock};
pub use error::ApiError;
pub use server::{Api, ApiConfig};

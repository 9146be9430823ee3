//! kefu's business in code: ids, value objects, events and pure aggregates.
//!
//! Each aggregate ([`Customer`], [`Complaint`], [`ServiceRequest`], [`Staff`],
//! [`CaseRegister`]) is two
//! pure functions, `decide(&state, command, now)` and `evolve(state, &event)` (see
//! [`Aggregate`]). Every rule of `DOMAIN.md` that one stream can enforce is enforced in
//! `decide` and refused with a [`DomainError`] variant that names it (`R-…`). Events
//! cross the storage boundary through [`DomainEvent`]: stable type names, versioned
//! JSON, and upcasting of old schema versions.
//!
//! Architecture invariant: no IO, no async, no tokio, sqlx, tonic or prost here. The
//! caller resolves time, ids and cross-stream lookups and puts them into the command.

mod aggregate;
pub mod audit;
pub mod balance;
pub mod calendar;
mod callback;
pub mod case_register;
mod codec;
pub mod complaint;
pub mod contact;
pub mod customer;
mod error;
mod ids;
pub mod personal;
pub mod policy;
pub mod policy_log;
pub mod request;
pub mod search_keys;
pub mod staff;
pub mod taxonomy;
pub mod time;
mod values;

pub use aggregate::Aggregate;
pub use callback::{CallbackLogged, LogCallback};
pub use case_register::CaseRegister;
pub use codec::{DecodeError, DomainEvent};
pub use complaint::Complaint;
pub use contact::PhoneRegion;
pub use customer::Customer;
pub use error::{DomainError, ErrorKind, ValueError};
pub use ids::{CaseNumber, ComplaintId, CustomerId, ServiceRequestId, StaffId};
pub use policy::{Policy, SlaRule, Target};
pub use policy_log::{PolicyBook, Versioned};
pub use request::ServiceRequest;
pub use staff::Staff;
pub use values::{
    Attachment, CallbackChannel, CallbackKind, CallbackOutcome, CallbackParty, Confidentiality,
    ContactChannel, Contacts, CustomerKind, IntakeChannel, ReplyKind, RequestKind, Score, Severity,
    SignerCapacity, StaffRole, StarLevel, Text, Tier,
};

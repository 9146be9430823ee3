//! The services called in-process: the console (`kefu-console`) serves people over
//! HTTP with the very service code gRPC callers reach, so access, redaction, the
//! record of inspections and every number are the same by construction.
//!
//! The console authenticates a person with `Api::authenticator` (the gRPC check) and
//! hands their principal to [`InProcess::request`]; the service then reads it as it
//! reads the interceptor's. Before each call it asks [`InProcess::admit`]: the server
//! installs the gRPC transport's limiter as the [`Gate`], so a person in a browser has
//! the same concurrency share and rate of expensive reads as the same principal over
//! gRPC (one budget for both).

use std::sync::Arc;

use tonic::{Request, Status};

use crate::auth::Principal;
use crate::pb;
use crate::services::audit::Audit;
use crate::services::callback::Callbacks;
use crate::services::complaint::Complaints;
use crate::services::customer::Customers;
use crate::services::reporting::Reports;
use crate::services::Ctx;

/// Where a call came from, as recorded in what it writes (an inspection's `source`):
/// `grpc` unless the request says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source(pub &'static str);

/// The `source` of a request: the one its caller set in process, else `grpc`.
pub(crate) fn source_of<T>(request: &Request<T>) -> &'static str {
    request.extensions().get::<Source>().map_or("grpc", |source| source.0)
}

/// Admits a call before it runs, as the gRPC transport admits its calls.
pub trait Gate: Send + Sync {
    /// A call of `service` (its full gRPC name, e.g. `kefu.v1.ReportingService`) by
    /// `who`, or the refusal the same gRPC call would get (`RESOURCE_EXHAUSTED`).
    fn admit(&self, service: &'static str, who: &Principal) -> Result<Pass, Status>;
}

/// What an admitted call holds: `answering` until its answer is in hand, `running`
/// until it ends (a stream, for as long as it is open), as a gRPC call holds them.
#[derive(Default)]
pub struct Pass {
    answering: Option<Box<dyn Send + Sync>>,
    running: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Pass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pass")
            .field("answering", &self.answering.is_some())
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl Pass {
    pub fn new(answering: impl Send + Sync + 'static, running: impl Send + Sync + 'static) -> Self {
        Pass { answering: Some(Box::new(answering)), running: Some(Box::new(running)) }
    }

    /// The answer is in hand: give back what only answering needed.
    #[must_use]
    pub fn answered(mut self) -> Self {
        self.answering = None;
        self
    }
}

/// The kefu services, to be called in this process with an authenticated principal.
#[derive(Clone)]
pub struct InProcess {
    ctx: Ctx,
    gate: Option<Arc<dyn Gate>>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess").field("gated", &self.gate.is_some()).finish_non_exhaustive()
    }
}

impl InProcess {
    pub(crate) fn new(ctx: Ctx) -> Self {
        InProcess { ctx, gate: None }
    }

    /// These services with every call admitted by `gate` first.
    #[must_use]
    pub fn with_gate(mut self, gate: Arc<dyn Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Admits a call of `service` by `who` (always, without a gate). Hold the pass
    /// while the call runs.
    pub fn admit(&self, service: &'static str, who: &Principal) -> Result<Pass, Status> {
        match &self.gate {
            Some(gate) => gate.admit(service, who),
            None => Ok(Pass::default()),
        }
    }

    /// A request as `who` makes it from `source` (e.g. `console`).
    pub fn request<T>(who: &Principal, source: &'static str, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(who.clone());
        request.extensions_mut().insert(Source(source));
        request
    }

    pub fn reporting(&self) -> impl pb::reporting_service_server::ReportingService {
        Reports { ctx: self.ctx.clone() }
    }

    pub fn audit(&self) -> impl pb::audit_service_server::AuditService {
        Audit { ctx: self.ctx.clone() }
    }

    pub fn customers(&self) -> impl pb::customer_service_server::CustomerService {
        Customers { ctx: self.ctx.clone() }
    }

    pub fn complaints(&self) -> impl pb::complaint_service_server::ComplaintService {
        Complaints { ctx: self.ctx.clone() }
    }

    pub fn callbacks(&self) -> impl pb::callback_service_server::CallbackService {
        Callbacks { ctx: self.ctx.clone() }
    }
}

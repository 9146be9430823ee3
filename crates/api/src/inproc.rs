//! The services called in-process: the console (`kefu-console`) serves people over
//! HTTP with the very service code gRPC callers reach, so access, redaction, the
//! record of inspections and every number are the same by construction.
//!
//! The console authenticates a person with `Api::authenticator` (the gRPC check) and
//! hands their principal to [`InProcess::request`]; the service then reads it as it
//! reads the interceptor's.

use tonic::Request;

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

/// The kefu services, to be called in this process with an authenticated principal.
#[derive(Debug, Clone)]
pub struct InProcess {
    ctx: Ctx,
}

impl InProcess {
    pub(crate) fn new(ctx: Ctx) -> Self {
        InProcess { ctx }
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

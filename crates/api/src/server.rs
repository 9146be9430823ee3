//! Assembles the services behind authentication, with request limits.

use std::sync::Arc;
use std::time::Duration;

use kefu_domain::{PhoneRegion, Policy};
use kefu_event_store::EventStore;
use kefu_projection::sql::Db;
use kefu_projection::{ReadModels, Runner};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Routes;

use crate::auth::{Authenticator, Tokens};
use crate::commands::{Clock, Commands};
use crate::error::ApiError;
use crate::inproc::InProcess;
use crate::pb;
use crate::policies::Policies;
use crate::services::audit::Audit;
use crate::services::callback::Callbacks;
use crate::services::complaint::Complaints;
use crate::services::customer::Customers;
use crate::services::events::Events;
use crate::services::reporting::Reports;
use crate::services::request::Requests;
use crate::services::staff::StaffDirectory;
use crate::services::Ctx;

/// Largest request accepted, in bytes; larger ones get `RESOURCE_EXHAUSTED` before decoding.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// What the API needs besides the store.
#[derive(Clone)]
pub struct ApiConfig {
    pub tokens: Tokens,
    /// The configured policy: recorded at start if it differs from the last recorded
    /// one (R-T3).
    pub policy: Policy,
    /// Who the `PolicyChanged` events this process records name as their actor.
    pub operator: String,
    pub clock: Clock,
    /// How long reads wait for `min_position` at most.
    pub read_wait: Duration,
    /// How often `WatchSla` looks at the clock and the deadlines (R-T5).
    pub sla_watch_interval: Duration,
    /// The region of phone numbers written without a country code.
    pub phone_region: PhoneRegion,
    /// Refuse a new customer whose phone or email a visible customer already has.
    pub refuse_duplicate_contacts: bool,
    /// A read replica (PostgreSQL hot standby) that answers the reporting RPCs.
    pub read_replica: Option<Db>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("policy", &self.policy)
            .field("read_wait", &self.read_wait)
            .field("read_replica", &self.read_replica.is_some())
            .finish()
    }
}

impl ApiConfig {
    pub fn new(tokens: Tokens) -> Self {
        ApiConfig {
            tokens,
            policy: Policy::default(),
            operator: "system".to_owned(),
            clock: Arc::new(chrono::Utc::now),
            read_wait: Duration::from_secs(5),
            sla_watch_interval: Duration::from_secs(30),
            phone_region: PhoneRegion::default(),
            refuse_duplicate_contacts: false,
            read_replica: None,
        }
    }
}

/// The kefu gRPC services, ready to be served.
#[derive(Debug, Clone)]
pub struct Api {
    ctx: Ctx,
    /// One authenticator for every service and the console, so failed attempts on
    /// either count together.
    authenticator: Authenticator,
}

impl Api {
    /// The services over `store`, after recording the configured policy if it changed
    /// (R-T3) and reading every recorded version.
    pub async fn new(
        store: EventStore,
        runner: Runner,
        config: ApiConfig,
    ) -> Result<Self, ApiError> {
        let models = ReadModels::new(runner);
        let reports = match config.read_replica {
            Some(replica) => models.on_replica(replica),
            None => models.clone(),
        };
        let commands = Commands::new(store, config.clock);
        let (policies, version) =
            Policies::record(&commands, &config.policy, &config.operator).await?;
        tracing::info!(policy_version = version, "the policy in force");
        let ctx = Ctx {
            commands,
            models,
            reports,
            policies,
            register: Arc::new(tokio::sync::Mutex::new(None)),
            live_customers: Arc::default(),
            read_wait: config.read_wait,
            sla_watch_interval: config.sla_watch_interval,
            contacts: crate::services::ContactPolicy {
                phone_region: config.phone_region,
                refuse_duplicates: config.refuse_duplicate_contacts,
            },
            tokens: config.tokens.clone(),
        };
        Ok(Api { ctx, authenticator: Authenticator::new(config.tokens) })
    }

    /// The version of the policy in force.
    pub fn policy_version(&self) -> u64 {
        self.ctx.policies.current().version
    }

    /// The read models reports are answered from (the replica's, when configured).
    pub fn report_models(&self) -> &ReadModels {
        &self.ctx.reports
    }

    /// The bearer-token check of every service, with its count of failed attempts.
    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// The services called in-process, as the console calls them.
    pub fn in_process(&self) -> InProcess {
        InProcess::new(self.ctx.clone())
    }

    /// Every kefu service, each behind the bearer-token check and the size limit.
    pub fn routes(&self) -> Routes {
        let auth = self.authenticator.clone();
        let ctx = &self.ctx;
        let customers =
            pb::customer_service_server::CustomerServiceServer::new(Customers { ctx: ctx.clone() })
                .max_decoding_message_size(MAX_REQUEST_BYTES);
        let staff =
            pb::staff_service_server::StaffServiceServer::new(StaffDirectory { ctx: ctx.clone() })
                .max_decoding_message_size(MAX_REQUEST_BYTES);
        let complaints = pb::complaint_service_server::ComplaintServiceServer::new(Complaints {
            ctx: ctx.clone(),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES);
        let callbacks =
            pb::callback_service_server::CallbackServiceServer::new(Callbacks { ctx: ctx.clone() })
                .max_decoding_message_size(MAX_REQUEST_BYTES);
        let reports =
            pb::reporting_service_server::ReportingServiceServer::new(Reports { ctx: ctx.clone() })
                .max_decoding_message_size(MAX_REQUEST_BYTES);
        let requests =
            pb::request_service_server::RequestServiceServer::new(Requests { ctx: ctx.clone() })
                .max_decoding_message_size(MAX_REQUEST_BYTES);
        let events = pb::event_service_server::EventServiceServer::new(Events { ctx: ctx.clone() })
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        let audit = pb::audit_service_server::AuditServiceServer::new(Audit { ctx: ctx.clone() })
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        Routes::new(InterceptedService::new(customers, auth.clone()))
            .add_service(InterceptedService::new(staff, auth.clone()))
            .add_service(InterceptedService::new(complaints, auth.clone()))
            .add_service(InterceptedService::new(callbacks, auth.clone()))
            .add_service(InterceptedService::new(reports, auth.clone()))
            .add_service(InterceptedService::new(requests, auth.clone()))
            .add_service(InterceptedService::new(events, auth.clone()))
            .add_service(InterceptedService::new(audit, auth))
    }
}

//! The console for people (issue 21): server-rendered HTML pages over the very service
//! code gRPC callers reach, for supervisors, analysts and compliance officers.
//!
//! A person signs in with their bearer token, checked by the gRPC authenticator (its
//! count of failed attempts included); each page then calls the services in-process
//! (`kefu_api::inproc`) as that principal, so what it shows, refuses and records is
//! exactly what the same call over gRPC would give. No JavaScript is needed to read a
//! page; `static/live.js` only streams the SLA watch into the operations page.
//!
//! Architecture invariant: the console decides no access and computes no report
//! number: both come from the service it calls.

mod charts;
mod i18n;
mod layout;
mod live;
mod pages;
mod session;
mod tls;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use kefu_api::auth::Authenticator;
use kefu_api::inproc::InProcess;
use kefu_api::Clock;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use i18n::Lang;
pub use session::{SESSION_COOKIE, SESSION_COOKIE_SECURE};
pub use tls::serve_tls;

/// Longest form body accepted (a sign-in, a search).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// How the console is run.
#[derive(Clone)]
pub struct ConsoleConfig {
    /// The business time zone (R-T1): dates and months are shown in it.
    pub time_zone: chrono_tz::Tz,
    /// The clock sessions expire by (the server's, injected in tests).
    pub clock: Clock,
    /// How long a session lasts after sign-in.
    pub session_ttl: Duration,
    /// Served over TLS: cookies are `Secure` and browsers are told to keep to HTTPS.
    pub tls: bool,
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("time_zone", &self.time_zone)
            .field("session_ttl", &self.session_ttl)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// What every handler reads.
pub(crate) struct State {
    pub services: InProcess,
    pub authenticator: Authenticator,
    pub sessions: session::Sessions,
    pub config: ConsoleConfig,
    /// Turns true when the server drains: live streams end so the server can stop.
    pub draining: watch::Receiver<bool>,
}

pub(crate) type Shared = Arc<State>;

/// The console's routes over `services`, authenticating with `authenticator`.
pub fn router(
    services: InProcess,
    authenticator: Authenticator,
    config: ConsoleConfig,
    draining: watch::Receiver<bool>,
) -> Router {
    let sessions = session::Sessions::new(config.clock.clone(), config.session_ttl);
    let state = Arc::new(State { services, authenticator, sessions, config, draining });
    Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(pages::signin::form).post(pages::signin::submit))
        .route("/signout", post(pages::signin::sign_out))
        .route("/lang/{lang}", get(pages::choose_language))
        .route("/operations", get(pages::operations::page))
        .route("/operations/live", get(live::stream))
        .route("/satisfaction", get(pages::satisfaction::page))
        .route("/summary", get(pages::summary::page))
        .route("/summary.csv", get(pages::summary::csv))
        .route("/cases", get(pages::casefile::open))
        .route("/cases/{case}", get(pages::casefile::page))
        .route("/cases/{case}/dossier.json", get(pages::casefile::dossier))
        .route("/customers", get(pages::customers::search))
        .route("/customers/{id}", get(pages::customers::customer))
        .route("/callbacks", get(pages::callbacks::page))
        .route("/static/{file}", get(web::asset))
        .fallback(web::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), web::expected_host))
        .layer(axum::middleware::map_response_with_state(state.clone(), web::security_headers))
        .with_state(state)
}

/// Serves `router` on `listener` (plain HTTP) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

//! The HTTP side shared by every page: security headers, the signed-in extractor, CSRF
//! checks, how a service's refusal becomes a page, the static files and formatting.

use std::future::Future;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use kefu_api::auth::Principal;
use kefu_api::inproc::{InProcess, Pass};
use maud::html;
use tonic::{Code, Status};

use crate::i18n::Lang;
use crate::session::{cookie, same_secret, Session, SESSION_COOKIE, SESSION_COOKIE_SECURE};
use crate::State as Services;
use crate::{layout, Shared};

/// Nothing but this origin's own files; no inline script or style, no framing, forms
/// posting only here. Pages work without script; `live.js` is a file of this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// What a call through the console records as its source (inspections).
pub const SOURCE: &str = "console";

/// The services as the limiter names them (their gRPC names).
pub use kefu_api::pb::audit_service_server::SERVICE_NAME as AUDIT;
pub use kefu_api::pb::callback_service_server::SERVICE_NAME as CALLBACKS;
pub use kefu_api::pb::complaint_service_server::SERVICE_NAME as COMPLAINTS;
pub use kefu_api::pb::customer_service_server::SERVICE_NAME as CUSTOMERS;
pub use kefu_api::pb::reporting_service_server::SERVICE_NAME as REPORTS;

/// Adds the security headers to every answer (pages, errors, files, redirects).
pub async fn security_headers(State(state): State<Shared>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    if state.config.tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Refuses (421) a plain-HTTP request that names a host other than loopback. Without
/// TLS the console listens on loopback only, so such a request came through a name that
/// merely resolves here: DNS rebinding, a page of another site reading the console as
/// its own origin and guessing tokens from this machine's address (whose failures lock
/// the gRPC port out too). Over TLS the certificate already binds the name.
pub async fn expected_host(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !state.config.tls {
        let named = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| request.uri().authority().map(axum::http::uri::Authority::as_str));
        if named.is_some_and(|host| !is_loopback_host(host)) {
            let lang = Lang::from_headers(request.headers());
            let t = lang.texts();
            let body = html! { section.refusal data-status="421" { h1 { (t.bad_request) } } };
            return (
                StatusCode::MISDIRECTED_REQUEST,
                layout::page(lang, None, t.bad_request, body),
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Whether a `Host` (name and optional port) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or(bracketed, |(name, _)| name),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The name of the session cookie this console sets.
pub fn session_cookie_name(state: &Shared) -> &'static str {
    if state.config.tls {
        SESSION_COOKIE_SECURE
    } else {
        SESSION_COOKIE
    }
}

/// A signed-in request: its session and language. Without a live session the
/// request is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct Signed {
    pub id: String,
    pub session: Session,
    pub lang: Lang,
}

impl Signed {
    pub fn who(&self) -> &Principal {
        &self.session.principal
    }

    /// A request to a service, as this person, from the console.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        InProcess::request(self.who(), SOURCE, message)
    }

    /// Admits a call of `service` as this person through the limiter the same gRPC
    /// call would meet (its share of calls, its rate of expensive reads); hold the pass
    /// while the call runs.
    pub fn admit(&self, state: &Services, service: &'static str) -> Result<Pass, Status> {
        state.services.admit(service, self.who())
    }

    /// `call` (a call of `service` as this person), once admitted; its slots are held
    /// until it answered.
    pub async fn call<T>(
        &self,
        state: &Services,
        service: &'static str,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let _pass = self.admit(state, service)?;
        call.await
    }

    /// Whether a form's CSRF token is this session's.
    pub fn csrf_ok(&self, token: &str) -> bool {
        same_secret(&self.session.csrf, token)
    }
}

impl FromRequestParts<Shared> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let Ok(lang) = Lang::from_request_parts(parts, state).await;
        let id = parts
            .headers
            .get(header::COOKIE)
            .and_then(|value| value.to_str().ok())
            .and_then(|cookies| cookie(cookies, session_cookie_name(state)))
            .map(str::to_owned);
        match id.and_then(|id| state.sessions.get(&id).map(|session| (id, session))) {
            Some((id, session)) => Ok(Signed { id, session, lang }),
            None => Err(Redirect::to("/signin").into_response()),
        }
    }
}

/// The page for a service's refusal or failure, with the HTTP status it maps to. A
/// caller's mistake shows the service's message (which never repeats personal data);
/// a failure of ours shows none of its detail.
pub fn refusal(lang: Lang, signed: Option<&Signed>, status: &Status) -> Response {
    let t = lang.texts();
    let (code, title, shown) = match status.code() {
        Code::Unauthenticated => return Redirect::to("/signin").into_response(),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, t.refused, true),
        Code::NotFound => (StatusCode::NOT_FOUND, t.not_found, true),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            (StatusCode::BAD_REQUEST, t.bad_request, true)
        }
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, t.too_many, true),
        Code::Unavailable | Code::Aborted => (StatusCode::SERVICE_UNAVAILABLE, t.unavailable, true),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, t.unavailable, false),
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::AlreadyExists
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => {
            tracing::warn!(code = ?status.code(), message = status.message(), "console: a service call failed");
            (StatusCode::INTERNAL_SERVER_ERROR, t.failed, false)
        }
    };
    let body = html! {
        section.refusal data-status=(code.as_u16()) {
            h1 { (title) }
            @if shown { p.message { (status.message()) } }
        }
    };
    (code, layout::page(lang, signed, title, body)).into_response()
}

/// A page answering 404 for paths the console does not serve.
pub async fn not_found(lang: Lang) -> Response {
    let t = lang.texts();
    let body = html! { section.refusal data-status="404" { h1 { (t.not_found) } } };
    (StatusCode::NOT_FOUND, layout::page(lang, None, t.not_found, body)).into_response()
}

/// The console's own files, compiled in: no CDN, nothing from elsewhere.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static str, &'static str) = match file.as_str() {
        "console.css" => (include_str!("../static/console.css"), "text/css; charset=utf-8"),
        "live.js" => (include_str!("../static/live.js"), "text/javascript; charset=utf-8"),
        "favicon.svg" => (include_str!("../static/favicon.svg"), "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// An instant in the business time zone, to the minute.
pub fn when(zone: chrono_tz::Tz, at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|at| DateTime::<Utc>::from_timestamp(at.seconds, 0))
        .map(|at| at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// A share (0..1) as a percentage with one decimal.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Seconds as hours with one decimal; `—` when there is no value.
pub fn hours(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "—".to_owned(), |s| format!("{:.1}", s / 3600.0))
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_names_are_this_machine() {
        for here in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.1.2.3:80",
        ] {
            assert!(is_loopback_host(here), "{here}");
        }
        for away in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:8080",
            "[::2]:80",
            "localhost.evil.example",
            "",
            "127.0.0.1.evil.example:80",
        ] {
            assert!(!is_loopback_host(away), "{away}");
        }
    }
}

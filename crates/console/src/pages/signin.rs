//! Signing in with a bearer token (checked exactly as gRPC checks it, failed attempts
//! counted with gRPC's), and signing out.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kefu_api::ApiError;
use maud::html;
use serde::Deserialize;

use crate::i18n::Lang;
use crate::layout;
use crate::session::{
    cookie, random_token, same_secret, set_cookie, SIGNIN_COOKIE, SIGNIN_COOKIE_SECURE,
};
use crate::web::{session_cookie_name, Signed};
use crate::Shared;

/// How long a sign-in form may be left open.
const FORM_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// `GET /signin`: the form, with a fresh token in it and in a cookie (double submit).
pub async fn form(State(state): State<Shared>, lang: Lang) -> Response {
    render(&state, lang, StatusCode::OK, None)
}

fn render(state: &Shared, lang: Lang, code: StatusCode, problem: Option<&str>) -> Response {
    let t = lang.texts();
    let Some(token) = random_token() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = html! {
        section.signin {
            h1 { (t.sign_in) }
            @if let Some(problem) = problem { p.problem #signin-problem { (problem) } }
            form method="post" action="/signin" {
                input type="hidden" name="csrf" value=(token);
                label for="token" { (t.token) }
                input #token type="password" name="token" autocomplete="off" required
                    placeholder=(t.token_hint);
                button #sign-in type="submit" { (t.sign_in) }
            }
        }
    };
    let cookie = set_cookie(signin_cookie(state), &token, FORM_LIFETIME, state.config.tls);
    (code, [(header::SET_COOKIE, cookie)], layout::page(lang, None, t.sign_in, body))
        .into_response()
}

/// The name of the sign-in form's cookie.
fn signin_cookie(state: &Shared) -> &'static str {
    if state.config.tls {
        SIGNIN_COOKIE_SECURE
    } else {
        SIGNIN_COOKIE
    }
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
    csrf: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").finish_non_exhaustive()
    }
}

/// `POST /signin`: a form whose token matches its cookie, and a bearer token the
/// authenticator accepts, opens a session.
pub async fn submit(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    lang: Lang,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let t = lang.texts();
    let expected = headers
        .get(header::COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|cookies| cookie(cookies, signin_cookie(&state)));
    if !expected.is_some_and(|expected| same_secret(expected, &form.csrf)) {
        return render(&state, lang, StatusCode::FORBIDDEN, Some(t.form_expired));
    }
    let header = format!("Bearer {}", form.token.trim());
    let principal = match state.authenticator.check(Some(peer.ip()), Some(&header)) {
        Ok(principal) => principal,
        Err(ApiError::ResourceExhausted(message)) => {
            return render(&state, lang, StatusCode::TOO_MANY_REQUESTS, Some(&message));
        }
        Err(_) => return render(&state, lang, StatusCode::UNAUTHORIZED, Some(t.token_refused)),
    };
    let Some((id, _)) = state.sessions.open(principal) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let session =
        set_cookie(session_cookie_name(&state), &id, state.sessions.ttl(), state.config.tls);
    let spent = set_cookie(signin_cookie(&state), "", Duration::ZERO, state.config.tls);
    let mut response = Redirect::to("/operations").into_response();
    for value in [session, spent] {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct SignOut {
    csrf: String,
}

/// `POST /signout`: ends the session (with its CSRF token, so no other site can sign
/// anyone out) and clears the cookie.
pub async fn sign_out(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<SignOut>,
) -> Response {
    if !signed.csrf_ok(&form.csrf) {
        let t = signed.lang.texts();
        let body = html! { section.refusal data-status="403" { h1 { (t.form_expired) } } };
        return (StatusCode::FORBIDDEN, layout::page(signed.lang, Some(&signed), t.refused, body))
            .into_response();
    }
    state.sessions.close(&signed.id);
    let cleared = set_cookie(session_cookie_name(&state), "", Duration::ZERO, state.config.tls);
    ([(header::SET_COOKIE, cleared)], Redirect::to("/signin")).into_response()
}

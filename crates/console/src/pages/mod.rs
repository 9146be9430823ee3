//! The console's pages, one file each; each calls the services as the signed-in person
//! and shows what they answer.

pub mod callbacks;
pub mod casefile;
pub mod customers;
pub mod operations;
pub mod satisfaction;
pub mod signin;
pub mod summary;

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::i18n::Lang;
use crate::session::{set_cookie, LANG_COOKIE};
use crate::web::Signed;
use crate::Shared;

/// `/`: the operations page for the signed in, else the sign-in page.
pub async fn home(signed: Result<Signed, Response>) -> Redirect {
    match signed {
        Ok(_) => Redirect::to("/operations"),
        Err(_) => Redirect::to("/signin"),
    }
}

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `/lang/{zh|en}`: the language toggle, kept in a cookie for a year; back to `next`
/// when it is a path of this console (never another site).
pub async fn choose_language(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    Query(next): Query<Next>,
) -> Response {
    let Some(lang) = Lang::from_slug(&slug) else {
        return Redirect::to("/").into_response();
    };
    let next = next.next.filter(|next| is_local_path(next)).unwrap_or_else(|| "/".to_owned());
    let year = Duration::from_secs(365 * 24 * 3_600);
    let cookie = set_cookie(LANG_COOKIE, lang.slug(), year, state.config.tls);
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

/// Whether `next` is a path of this console as a browser reads it. Browsers drop tabs
/// and newlines from a URL and read `\` as `/`, so `/<tab>/evil.example` would be
/// `//evil.example`, another site: only visible ASCII without `\` is taken, and never
/// `//` at the start.
fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'\\')
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_paths_of_this_console_are_local() {
        for local in ["/", "/operations", "/summary?month=2026-11", "/cases/2026-000001"] {
            assert!(is_local_path(local), "{local}");
        }
        for away in [
            "",
            "operations",
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/ /evil.example",
            "https://evil.example/",
            "/é",
        ] {
            assert!(!is_local_path(away), "{away:?}");
        }
    }
}

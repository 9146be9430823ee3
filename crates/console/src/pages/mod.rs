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

use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::i18n::Lang;
use crate::session::{set_cookie, LANG_COOKIE};
use crate::web::Signed;

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
pub async fn choose_language(Path(slug): Path<String>, Query(next): Query<Next>) -> Response {
    let Some(lang) = Lang::from_slug(&slug) else {
        return Redirect::to("/").into_response();
    };
    let next = next
        .next
        .filter(|next| next.starts_with('/') && !next.starts_with("//") && !next.contains('\\'))
        .unwrap_or_else(|| "/".to_owned());
    let year = Duration::from_secs(365 * 24 * 3_600);
    ([(header::SET_COOKIE, set_cookie(LANG_COOKIE, lang.slug(), year, false))], Redirect::to(&next))
        .into_response()
}

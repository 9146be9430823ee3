//! The page shell: language, navigation, who is signed in, the sign-out form and the
//! language toggle, around each page's content.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::i18n::Lang;
use crate::web::Signed;

/// A whole page.
pub fn page(lang: Lang, signed: Option<&Signed>, title: &str, content: Markup) -> Markup {
    let t = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t.console) }
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header.top {
                    span.brand { (t.console) }
                    @if let Some(signed) = signed {
                        nav {
                            a href="/operations" { (t.operations) }
                            a href="/satisfaction" { (t.satisfaction) }
                            a href="/summary" { (t.summary) }
                            a href="/cases" { (t.case_file) }
                            a href="/customers" { (t.customers) }
                            a href="/callbacks" { (t.callbacks) }
                        }
                        span.who { (t.signed_in_as) " " strong #principal { (signed.who().id) } }
                        form.signout method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(signed.session.csrf);
                            button #sign-out type="submit" { (t.sign_out) }
                        }
                    }
                    a.lang #lang-toggle href=(format!("/lang/{}", lang.other().slug())) {
                        (t.switch_language)
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A non-breaking dash for an empty cell.
pub fn dash() -> Markup {
    PreEscaped("—".to_owned())
}

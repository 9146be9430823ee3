//! `FindCustomers` and the possible duplicates of a registration (issue 20), over the
//! `customers` read model's search keys, never past the caller's clearance (R-C6).

use kefu_domain::contact::{email_key, phone_key};
use kefu_domain::search_keys::{customer_keys, KeyKind, NameQuery};
use kefu_domain::{Contacts, CustomerId};
use kefu_projection::queries::{Duplicate, Found, Lookup};
use kefu_projection::{confidentiality_rank, Page};

use super::customer::{listed, Customers};
use crate::access::{authorize, Access, Rpc};
use crate::auth::Principal;
use crate::convert::Fields;
use crate::error::ApiError;
use crate::feed::Reader;
use crate::pb;
use crate::withheld::customer::row;

/// Longest query accepted, in characters: far beyond any name, number or address.
const MAX_QUERY_CHARS: usize = 200;

impl Customers {
    pub(super) async fn find(
        &self,
        who: &Principal,
        req: pb::FindCustomersRequest,
    ) -> Result<pb::FindCustomersResponse, ApiError> {
        // The access table: whoever reads customer records (not analysts, who never see
        // personal data); only rows within the caller's clearance, filtered in the query.
        let access = authorize(who, Rpc::FindCustomers)?;
        let lookup = self.lookup_of(&req)?;
        self.ctx.caught_up_in(req.min_position, "customers").await?;
        let page = Page {
            after: (!req.page_token.is_empty()).then(|| req.page_token.clone()),
            size: req.page_size,
        };
        let rank = confidentiality_rank(access.max_level());
        let found = self.ctx.models.find_customers(&lookup, rank, &page).await?;
        let mut matches: Vec<pb::CustomerMatch> = found.rows.into_iter().map(matched).collect();
        let customers: Vec<&mut pb::Customer> =
            matches.iter_mut().filter_map(|m| m.customer.as_mut()).collect();
        self.hide_referrers(&access, customers).await?;
        let mut reader = Reader::new(self.ctx.clone(), who.clone());
        let mut shown = Vec::with_capacity(matches.len());
        for mut found in matches {
            if let Some(customer) = found.customer.take() {
                // Raised above the caller since the query: not a match.
                let Some(customer) =
                    row(&self.ctx, &mut reader, access.max_level(), customer).await?
                else {
                    continue;
                };
                found.customer = Some(customer);
            }
            shown.push(found);
        }
        let mut matches = shown;
        // Found by a name, phone or email withheld from the caller: being found would
        // tell it (R-C6), so the match is left out.
        matches.retain(|m| {
            let by = match pb::MatchKind::try_from(m.matched) {
                Ok(pb::MatchKind::Phone | pb::MatchKind::Email) => "contacts",
                _ => "name",
            };
            m.customer
                .as_ref()
                .is_none_or(|customer| !customer.redacted_fields.iter().any(|f| f == by))
        });
        Ok(pb::FindCustomersResponse { matches, next_page_token: found.next.unwrap_or_default() })
    }

    /// The query, normalised the way the index was built; a query that is not what it
    /// says it is (or holds nothing to look for) is a violation of `query`.
    fn lookup_of(&self, req: &pb::FindCustomersRequest) -> Result<Lookup, ApiError> {
        let mut f = Fields::new();
        let query = req.query.trim();
        if query.is_empty() {
            f.violation("query", "is required: a phone number, an email or a name");
        } else if query.chars().count() > MAX_QUERY_CHARS {
            f.violation("query", format!("is longer than {MAX_QUERY_CHARS} characters"));
        }
        let by = pb::FindBy::try_from(req.by).ok();
        if by.is_none() {
            f.violation("by", "is not a kind of query");
        }
        f.finish()?;
        let by = match by {
            Some(pb::FindBy::Unspecified) | None => detect(query),
            Some(by) => by,
        };
        let region = self.ctx.contacts.phone_region;
        let lookup = match by {
            pb::FindBy::Phone => phone_key(query, region).map(Lookup::Phone),
            pb::FindBy::Email => email_key(query).map(Lookup::Email),
            pb::FindBy::Name | pb::FindBy::Unspecified => NameQuery::parse(query).map(Lookup::Name),
        };
        lookup.ok_or_else(|| {
            let what = match by {
                pb::FindBy::Phone => "is not a phone number",
                pb::FindBy::Email => "is not an email address",
                pb::FindBy::Name | pb::FindBy::Unspecified => "holds no 汉字 and no letters",
            };
            ApiError::field("query", what)
        })
    }

    /// Possible duplicates of a customer with this name and these contacts, among those
    /// the caller may see (rows within the clearance of `access`, the registration's);
    /// `except` is the registration's own customer (on a retry).
    pub(super) async fn duplicates_of(
        &self,
        access: &Access,
        name: &str,
        contacts: &Contacts,
        except: Option<CustomerId>,
    ) -> Result<Vec<Duplicate>, ApiError> {
        let keys = customer_keys(None, contacts, self.ctx.contacts.phone_region);
        let rank = confidentiality_rank(access.max_level());
        let except = except.map(|id| id.to_string());
        Ok(self.ctx.models.duplicates(&keys, name, rank, except.as_deref()).await?)
    }
}

/// What a query without `by` is: an email has `@`; digits with phone punctuation are a
/// number; anything else is a name.
fn detect(query: &str) -> pb::FindBy {
    let digits = query.chars().filter(char::is_ascii_digit).count();
    let phone_like =
        query.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | '.' | ' '));
    if query.contains('@') {
        pb::FindBy::Email
    } else if phone_like && digits >= 3 {
        pb::FindBy::Phone
    } else {
        pb::FindBy::Name
    }
}

fn matched(found: Found) -> pb::CustomerMatch {
    use pb::MatchKind as M;
    let kind = match found.matched {
        KeyKind::Phone => M::Phone,
        KeyKind::Email => M::Email,
        // Never searched: addresses only tell duplicates apart.
        KeyKind::Address => M::Unspecified,
        KeyKind::HanWhole => M::NameExact,
        KeyKind::HanStart => M::NameStart,
        KeyKind::HanInner => M::NamePart,
        KeyKind::SpellStart => M::SpellingStart,
        KeyKind::SpellInner => M::SpellingPart,
        KeyKind::InitialsStart => M::InitialsStart,
        KeyKind::InitialsInner => M::InitialsPart,
    };
    pb::CustomerMatch { customer: Some(listed(found.customer)), matched: kind as i32 }
}

/// A duplicate as the registration's answer names it.
pub(super) fn duplicate_out(duplicate: &Duplicate) -> pb::PossibleDuplicate {
    let shared = duplicate
        .shared
        .iter()
        .filter_map(|kind| match kind {
            KeyKind::Phone => Some(pb::ContactMatch::Phone as i32),
            KeyKind::Email => Some(pb::ContactMatch::Email as i32),
            KeyKind::Address => Some(pb::ContactMatch::Address as i32),
            _ => None,
        })
        .collect();
    pb::PossibleDuplicate {
        customer_id: duplicate.customer_id.clone(),
        shared,
        same_name: duplicate.same_name,
    }
}

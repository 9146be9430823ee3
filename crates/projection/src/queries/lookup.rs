//! Finding customers (issue 20) over `rm_customer_keys`: by phone, email or name, best
//! matches first, paged, never past the caller's clearance (R-C6); and the possible
//! duplicates of a customer about to be registered.
//!
//! Each kind of key a lookup can match is read as one range of the keys' primary key
//! `(kind, term, customer_id, source_id)`, kinds in rank order, so a page costs an index
//! range of about its size however many customers match. Only live customers count: not
//! forgotten, not merged away (a duplicate's keys find its survivor), at or below the
//! caller's clearance, which is checked row by row in the same statement, so a customer
//! above it is never read, counted or hinted at by a page token.

use std::collections::BTreeMap;

use kefu_domain::search_keys::{fold_letters, han_text, KeyKind, NameQuery, SearchKey};

use super::{Page, Paged, ReadModels};
use crate::error::ProjectionError;
use crate::projections::customers::CustomerRow;
use crate::sql::{DbRead, Param};

/// What a lookup looks for, normalised by the caller with [`kefu_domain::contact`] and
/// [`NameQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// E.164.
    Phone(String),
    /// Lowercase.
    Email(String),
    Name(NameQuery),
}

impl Lookup {
    fn kinds(&self) -> &'static [KeyKind] {
        match self {
            Lookup::Phone(_) => &[KeyKind::Phone],
            Lookup::Email(_) => &[KeyKind::Email],
            Lookup::Name(query) => query.kinds(),
        }
    }

    fn term(&self, kind: KeyKind) -> String {
        match self {
            Lookup::Phone(term) | Lookup::Email(term) => term.clone(),
            Lookup::Name(query) => query.key_for(kind),
        }
    }

    /// The 汉字 a match's name must contain beyond its key (long queries only).
    fn check(&self, kind: KeyKind) -> Option<&str> {
        match self {
            Lookup::Name(query) => query.needs_check(kind),
            Lookup::Phone(_) | Lookup::Email(_) => None,
        }
    }
}

/// A customer found, and what matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub customer: CustomerRow,
    pub matched: KeyKind,
}

/// A registered customer who may be the same person as one about to be registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub customer_id: String,
    /// The contacts shared: `Phone`, `Email`, `Address`.
    pub shared: Vec<KeyKind>,
    /// The same name (its 汉字, or its letters without case and accents).
    pub same_name: bool,
}

impl Duplicate {
    /// An exact phone or email match: what the refusal policy refuses.
    pub fn exact(&self) -> bool {
        self.shared.iter().any(|kind| matches!(kind, KeyKind::Phone | KeyKind::Email))
    }
}

/// Duplicates answered at most.
pub const MAX_DUPLICATES: usize = 20;

/// Where a page ended: the last key read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    kind: KeyKind,
    term: String,
    customer_id: String,
    source_id: String,
}

impl Cursor {
    fn token(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.kind.code(),
            hex::encode(&self.term),
            self.customer_id,
            self.source_id
        )
    }

    fn parse(token: &str) -> Result<Cursor, ProjectionError> {
        let invalid = || ProjectionError::InvalidArgument {
            field: "page_token",
            reason: "is not a token this lookup returned".into(),
        };
        let mut parts = token.split('.');
        let (Some(kind), Some(term), Some(customer_id), Some(source_id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let kind = kind.parse().ok().and_then(KeyKind::from_code).ok_or_else(invalid)?;
        let term = hex::decode(term).ok().and_then(|b| String::from_utf8(b).ok());
        let ids_ok = [customer_id, source_id].iter().all(|id| uuid::Uuid::parse_str(id).is_ok());
        match term {
            Some(term) if ids_ok => Ok(Cursor {
                kind,
                term,
                customer_id: customer_id.to_owned(),
                source_id: source_id.to_owned(),
            }),
            _ => Err(invalid()),
        }
    }
}

/// A statement's text and parameters, each placeholder used once, in order.
#[derive(Default)]
struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: impl Into<Param>) -> &mut Self {
        self.params.push(value.into());
        let n = self.params.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// `alias.term` matching `term` the way `kind` matches: whole, or as a prefix.
    /// With `by_customer`: `alias.kind` is compared as an expression, which no index serves
    /// (see the better-match check of `find_in_kind`).
    fn matches(&mut self, alias: &str, kind: KeyKind, term: &str, by_customer: bool) -> &mut Self {
        let column =
            if by_customer { format!("{alias}.kind + 0") } else { format!("{alias}.kind") };
        self.push(&format!("{column} = ")).bind(kind.code());
        if kind.matches_prefix() {
            // Spelled terms are a–z: every term starting with `term` sorts below `term{`.
            self.push(&format!(" AND {alias}.term >= ")).bind(term);
            self.push(&format!(" AND {alias}.term < ")).bind(format!("{term}{{"))
        } else {
            self.push(&format!(" AND {alias}.term = ")).bind(term)
        }
    }
}

impl ReadModels {
    /// Customers matching `lookup` visible at clearance rank `max_rank`, best first:
    /// kinds in rank order, then term, customer and source id. A customer matching in
    /// several ways is listed once, at its best.
    pub async fn find_customers(
        &self,
        lookup: &Lookup,
        max_rank: i64,
        page: &Page,
    ) -> Result<Paged<Found>, ProjectionError> {
        let limit = usize::try_from(page.limit()?).unwrap_or(usize::MAX);
        let mut cursor = page.after.as_deref().map(Cursor::parse).transpose()?;
        let kinds = lookup.kinds();
        // Every statement below is an index range of about a page whatever it looks for,
        // so it runs on a generic plan (see `begin_generic_read`): planned once per
        // connection, where planning each execution cost more than running it.
        let mut read = self.db().begin_generic_read().await?;
        let mut found: Vec<(Found, Cursor)> = Vec::new();
        for (i, &kind) in kinds.iter().enumerate() {
            if cursor.as_ref().is_some_and(|after| after.kind > kind) {
                continue;
            }
            loop {
                let wanted = limit + 1 - found.len();
                let after = cursor.as_ref().filter(|after| after.kind == kind);
                let batch =
                    find_in_kind(&mut read, lookup, &kinds[..=i], kind, after, max_rank, wanted);
                let batch = batch.await?;
                let full = batch.len() == wanted;
                let last = batch.last().map(|(_, at)| at.clone());
                for (hit, at) in batch {
                    let name = hit.customer.name.as_deref().unwrap_or_default();
                    if lookup.check(kind).is_none_or(|han| han_text(name).contains(han)) {
                        found.push((hit, at));
                    }
                }
                // A long 汉字 query may drop rows its first characters matched: read on.
                match last {
                    Some(last) if full && found.len() <= limit => cursor = Some(last),
                    _ => break,
                }
            }
            if found.len() > limit {
                break;
            }
        }
        read.finish().await?;
        let next = (found.len() > limit).then(|| found[limit - 1].1.token());
        found.truncate(limit);
        Ok(Paged { rows: found.into_iter().map(|(hit, _)| hit).collect(), next })
    }

    /// Live customers visible at `max_rank` sharing a phone or an email with `keys`, or
    /// an address and the name (`name`): possible duplicates of a customer about to be
    /// registered, those with the same name first. `except` is left out (a retried
    /// registration's own customer).
    pub async fn duplicates(
        &self,
        keys: &[SearchKey],
        name: &str,
        max_rank: i64,
        except: Option<&str>,
    ) -> Result<Vec<Duplicate>, ProjectionError> {
        let contacts: Vec<&SearchKey> = keys
            .iter()
            .filter(|k| matches!(k.kind, KeyKind::Phone | KeyKind::Email | KeyKind::Address))
            .collect();
        if contacts.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push(
            "SELECT k.kind AS k_kind, c.customer_id, c.name FROM rm_customer_keys k \
             JOIN rm_customers c ON c.customer_id = k.customer_id WHERE (",
        );
        for (i, key) in contacts.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { " OR (" });
            sql.matches("k", key.kind, &key.key, false).push(")");
        }
        sql.push(") AND c.confidentiality_rank <= ").bind(max_rank);
        sql.push(" AND c.forgotten_at IS NULL AND c.merged_into IS NULL");
        if let Some(except) = except {
            sql.push(" AND c.customer_id <> ").bind(except);
        }
        // Enough rows for MAX_DUPLICATES customers sharing every kind of contact.
        sql.push(" ORDER BY c.customer_id LIMIT 200");
        let mut by_customer: BTreeMap<String, Duplicate> = BTreeMap::new();
        let identity = name_identity(name);
        for row in self.db().fetch_all(&sql.text, &sql.params).await? {
            let kind = KeyKind::from_code(row.int("k_kind")?)
                .ok_or_else(|| ProjectionError::Corrupt("unknown key kind".into()))?;
            let customer_id = row.text("customer_id")?;
            let same_name = row.opt_text("name")?.is_some_and(|n| name_identity(&n) == identity);
            let entry = by_customer.entry(customer_id.clone()).or_insert(Duplicate {
                customer_id,
                shared: Vec::new(),
                same_name,
            });
            if !entry.shared.contains(&kind) {
                entry.shared.push(kind);
            }
        }
        let mut duplicates: Vec<Duplicate> = by_customer
            .into_values()
            .filter(|d| d.exact() || (d.same_name && !identity.is_empty()))
            .map(|mut d| {
                d.shared.sort();
                d
            })
            .collect();
        duplicates.sort_by(|a, b| {
            (!a.same_name, std::cmp::Reverse(a.shared.len()), &a.customer_id).cmp(&(
                !b.same_name,
                std::cmp::Reverse(b.shared.len()),
                &b.customer_id,
            ))
        });
        duplicates.truncate(MAX_DUPLICATES);
        Ok(duplicates)
    }
}

/// Up to `wanted` matches among keys of `kind`, after `after`, skipping customers
/// matched better by an earlier kind of `kinds` (or by an earlier key of this one).
async fn find_in_kind(
    read: &mut DbRead,
    lookup: &Lookup,
    kinds: &[KeyKind],
    kind: KeyKind,
    after: Option<&Cursor>,
    max_rank: i64,
    wanted: usize,
) -> Result<Vec<(Found, Cursor)>, ProjectionError> {
    let term = lookup.term(kind);
    let mut sql = Sql::default();
    sql.push(
        "SELECT k.term AS k_term, k.source_id AS k_source, c.* FROM rm_customer_keys k \
         JOIN rm_customers c ON c.customer_id = k.customer_id WHERE ",
    );
    sql.matches("k", kind, &term, false);
    if let Some(after) = after {
        sql.push(" AND (k.term, k.customer_id, k.source_id) > (").bind(after.term.as_str());
        sql.push(", ").bind(after.customer_id.as_str());
        sql.push(", ").bind(after.source_id.as_str()).push(")");
    }
    sql.push(" AND c.confidentiality_rank <= ").bind(max_rank);
    sql.push(" AND c.forgotten_at IS NULL AND c.merged_into IS NULL");
    // The customer's own handful of keys, read through `(customer_id, …)` only: the
    // `kind` of a better match is compared as an expression, so no planner can take
    // its `(kind, term)` range of the primary key instead, a range that grows with
    // the population (SQLite chose it: 2 ms at 20,000 customers; PostgreSQL's
    // generic plans did: 22 ms a page at 1,000,000).
    sql.push(
        " AND NOT EXISTS (SELECT 1 FROM rm_customer_keys b \
         WHERE b.customer_id = k.customer_id AND (",
    );
    for (i, &better) in kinds.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        sql.matches("b", better, &lookup.term(better), true);
        if better == kind {
            sql.push(" AND (b.term, b.source_id) < (k.term, k.source_id)");
        }
        sql.push(")");
    }
    sql.push(")) ORDER BY k.term, k.customer_id, k.source_id LIMIT ");
    sql.bind(i64::try_from(wanted).unwrap_or(i64::MAX));
    let rows = read.fetch_all(&sql.text, &sql.params).await?;
    rows.iter()
        .map(|row| {
            let customer = CustomerRow::from_row(row)?;
            let at = Cursor {
                kind,
                term: row.text("k_term")?,
                customer_id: customer.customer_id.clone(),
                source_id: row.text("k_source")?,
            };
            Ok((Found { customer, matched: kind }, at))
        })
        .collect()
}

/// A name as duplicates compare it: its 汉字, else its letters without case or accents.
fn name_identity(name: &str) -> String {
    let han = han_text(name);
    if han.is_empty() {
        fold_letters(name)
    } else {
        han
    }
}

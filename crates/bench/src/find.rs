//! `find`: seeds N customers with Chinese names, mobile numbers and some emails, builds
//! the read models (the search index with them), then times `FindCustomers` over gRPC by
//! phone (written another way than stored), by whole 汉字 name, by pinyin and by one
//! given-name character (many matches, a page of ten).

use std::time::{Duration, Instant};

use chrono::Utc;
use kefu_api::pb;
use kefu_domain::customer::{Customer, CustomerCommand, RegisterCustomer};
use kefu_domain::search_keys::{name_keys, KeyKind};
use kefu_domain::{
    Aggregate, Confidentiality, Contacts, CustomerId, CustomerKind, DomainEvent, StaffId, Text,
    Tier,
};
use kefu_event_store::{
    Append, EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions, StreamId,
};
use kefu_projection::{all_projections, Runner};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::load::{clients, drive, figures};
use crate::server::Server;
use crate::stats::{per_second, Latencies};
use crate::{Common, Target};

/// Common surnames, two compound ones among them, and 单 (Shàn, a 多音字).
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "闫", "段", "雷", "侯",
    "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "覃", "武", "戴",
    "莫", "孔", "欧阳", "司马", "单",
];

/// Characters common in given names.
const GIVEN: &str = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬\
    鑫斌宇浩凯健俊帆帅旭宁博文雪琳晨辰欣怡佳悦子涵梓轩宇航一诺雨萱思远嘉懿铭泽瑞睿昊天\
    晓东海波建国志强永红丹丹莉婷慧颖琪瑶欢露春梅秋菊冬雪建华国庆德胜福贵满仓金花银凤翠";

/// The customer `n`'s name, mobile number and email (one in three has one).
fn person(n: u64) -> (String, String, Option<String>) {
    let given: Vec<char> = GIVEN.chars().filter(|c| !c.is_whitespace()).collect();
    let pick = |seed: u64, len: usize| {
        usize::try_from(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40).unwrap_or(0) % len
    };
    let surname = SURNAMES[pick(n, SURNAMES.len())];
    let mut name = surname.to_owned();
    name.push(given[pick(n ^ 0x55, given.len())]);
    if n % 2 == 0 {
        name.push(given[pick(n ^ 0xAA, given.len())]);
    }
    let phone = format!("+86138{n:08}");
    let email = (n % 3 == 0).then(|| format!("c{n}@example.cn"));
    (name, phone, email)
}

fn registered(n: u64) -> anyhow::Result<(CustomerId, Vec<NewEvent>)> {
    let (name, phone, email) = person(n);
    let id = CustomerId::from_uuid(Uuid::now_v7());
    // New events carry contacts as normalised by the API (E.164).
    let contacts =
        Contacts { phones: vec![phone], emails: email.into_iter().collect(), address: None };
    let command = CustomerCommand::Register(RegisterCustomer {
        customer_id: id,
        name: Text::new("name", &name)?,
        kind: CustomerKind::Individual,
        contacts,
        tier: Tier::Regular,
        stars: None,
        source_channel: Text::new("source", "web")?,
        referred_by: None,
        referrer_registered: false,
        confidentiality: Confidentiality::Internal,
        agent: StaffId::new("a1")?,
        agent_clearance: Some(Confidentiality::Internal),
    });
    let events = Customer::decide(&None, command, Utc::now())?;
    let new = events
        .iter()
        .map(|e| NewEvent::new(Uuid::now_v7(), e.event_type(), e.schema_version(), e.to_payload()))
        .collect();
    Ok((id, new))
}

/// Appends `customers` registrations, a thousand streams per transaction. Their personal
/// fields are not sealed: what is measured is the read model, and sealing a million
/// subjects would time the key table instead.
async fn seed(store: &EventStore, customers: u64) -> anyhow::Result<()> {
    anyhow::ensure!(store.head_position().await? == 0, "find seeds an empty database");
    let mut n = 0;
    while n < customers {
        let end = customers.min(n + 1_000);
        let mut appends = Vec::new();
        for i in n..end {
            let (id, events) = registered(i)?;
            appends.push(Append {
                stream_id: StreamId::new(id.stream_name())?,
                expected: ExpectedVersion::NoStream,
                events,
                metadata: Metadata::default(),
                conditions: Vec::new(),
            });
        }
        for outcome in store.submit_group(&appends)?.await {
            outcome?;
        }
        n = end;
    }
    Ok(())
}

/// Brings the database to the steady state lookups meet in service, rather than timing
/// them against the aftermath of a bulk load: PostgreSQL vacuums and analyzes the new
/// read-model rows (which autovacuum does on its own some minutes later, competing for
/// the two cores meanwhile); SQLite folds its WAL back into the database file.
async fn settle(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql("VACUUM ANALYZE rm_customers, rm_customer_keys").execute(&mut conn).await?;
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
    }
    Ok(())
}

/// The kinds of lookup timed, each `duration` long at the given concurrency.
const KINDS: [&str; 4] = ["phone", "name", "pinyin", "given_name_char"];

/// A lookup of kind `kind` for a random seeded customer.
fn query(kind: &str, customers: u64, iteration: u64, client_index: usize) -> (String, u32) {
    let seed = iteration
        .wrapping_mul(2_654_435_761)
        .wrapping_add(u64::try_from(client_index).unwrap_or(0) * 7_919);
    let n = seed % customers.max(1);
    let (name, phone, _) = person(n);
    match kind {
        // Stored +8613800001234; searched as an agent types it from a call.
        "phone" => (format!("{} {} {}", &phone[3..6], &phone[6..10], &phone[10..]), 10),
        "name" => (name, 10),
        "pinyin" => {
            let spelled = name_keys(&name)
                .into_iter()
                .find(|key| key.kind == KeyKind::SpellStart)
                .map_or_else(|| name.clone(), |key| key.key);
            (spelled, 10)
        }
        _ => (name.chars().last().map(String::from).unwrap_or_default(), 10),
    }
}

pub async fn run(
    target: &Target,
    common: &Common,
    customers: u64,
    reuse: bool,
) -> anyhow::Result<Value> {
    let store = EventStore::open(&target.url, StoreOptions::default()).await?;
    let began = Instant::now();
    if reuse {
        // Registrations are one event each, beside the policy versions the server
        // recorded when it ran (R-T3): anything else is not a `find` database.
        let policy = StreamId::new(kefu_domain::policy_log::STREAM)?;
        let head = store.head_position().await? - store.stream_version(&policy).await?;
        anyhow::ensure!(
            head == customers,
            "--reuse wants the {customers} customers of `find`, the log holds {head} others"
        );
    } else {
        seed(&store, customers).await?;
    }
    let seed_elapsed = began.elapsed();
    let began = Instant::now();
    Runner::new(store.clone(), all_projections()).catch_up().await?;
    let index_elapsed = began.elapsed();
    settle(&target.url).await?;
    let server =
        crate::server::start(target, common.endpoint.as_deref(), common.token.as_deref()).await?;
    let mut by_kind = serde_json::Map::new();
    let mut all = Latencies::default();
    let mut total = 0u64;
    let mut elapsed = Duration::ZERO;
    for kind in KINDS {
        let (mut latencies, took) = time_kind(&server, common, kind, customers).await?;
        let count = u64::try_from(latencies.len())?;
        by_kind.insert(
            kind.to_owned(),
            json!({
                "lookups": count,
                "p50_ms": latencies.percentile_ms(50),
                "p99_ms": latencies.percentile_ms(99),
                "lookups_per_s": per_second(count, took),
            }),
        );
        total += count;
        elapsed += took;
        all.extend(latencies);
    }
    let mut result = figures("find", common, target.backend(), total, 0, all, elapsed);
    result["customers"] = json!(customers);
    result["reused"] = json!(reuse);
    if !reuse {
        result["seed_customers_per_s"] = json!(per_second(customers, seed_elapsed));
        result["index_build_s"] = json!(index_elapsed.as_secs_f64());
        result["index_customers_per_s"] = json!(per_second(customers, index_elapsed));
    }
    result["by_kind"] = Value::Object(by_kind);
    Ok(result)
}

async fn time_kind(
    server: &Server,
    common: &Common,
    kind: &'static str,
    customers: u64,
) -> anyhow::Result<(Latencies, Duration)> {
    let clients = clients(server, common.concurrency.max(1), false).await?;
    drive(clients, common.duration(), move |index, mut client, iteration| async move {
        let (query, page_size) = query(kind, customers, iteration, index);
        let found = client
            .customers
            .find_customers(pb::FindCustomersRequest {
                query,
                by: pb::FindBy::Unspecified as i32,
                page_size,
                page_token: String::new(),
                min_position: 0,
            })
            .await?
            .into_inner();
        anyhow::ensure!(!found.matches.is_empty(), "a {kind} lookup found nobody");
        Ok(())
    })
    .await
}

//! How lookups are planned, on SQLite and PostgreSQL: a paged lookup across kinds finds
//! the same customers either way, and on PostgreSQL its statements run on generic plans
//! (planned once per connection, not on every execution: re-planning cost a lookup more
//! than running it) while every other statement on the same pooled connection keeps
//! the server's own choice.

mod support;

use kefu_domain::search_keys::NameQuery;
use kefu_domain::{Confidentiality, Tier};
use kefu_projection::queries::Lookup;
use kefu_projection::sql::Db;
use kefu_projection::{all_projections, confidentiality_rank, Page, ReadModels, Runner};
use kefu_testkit::TestDatabase;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_paged_lookup_across_kinds() {
    paged_lookup_across_kinds(&kefu_testkit::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_paged_lookup_across_kinds() {
    let Some(db) = kefu_testkit::postgres().await else { return };
    paged_lookup_across_kinds(&db).await;
}

fn spec() -> NewCustomer {
    NewCustomer { tier: Tier::Regular, stars: None, referred_by: None, registered: t(0) }
}

/// `wang` one customer a page: the two whose name starts with it (by spelling), then
/// the one with it later in the name, then nothing; on PostgreSQL the lookup statements
/// were planned generically only, and the connection they ran on is back in `auto` mode.
async fn paged_lookup_across_kinds(db: &TestDatabase) {
    let store = open(db).await;
    for name in ["王瑞宏", "汪芳", "黄旺", "李四"] {
        register_customer(&store, name, spec()).await;
    }
    let runner = Runner::new(store.clone(), all_projections());
    runner.catch_up().await.unwrap();
    // One connection, so what the lookups left on it is what the next query meets.
    let one = match runner.db() {
        Db::Postgres(_) => Db::replica(db.url(), 1).unwrap(),
        sqlite => sqlite.clone(),
    };
    let models = ReadModels::new(runner.clone()).on_replica(one.clone());

    let lookup = Lookup::Name(NameQuery::parse("wang").unwrap());
    let rank = confidentiality_rank(Confidentiality::Internal);
    let mut names = Vec::new();
    let mut page = Page { after: None, size: 1 };
    // Twice the whole way, so PostgreSQL meets each statement more than once.
    for _ in 0..2 {
        loop {
            let found = models.find_customers(&lookup, rank, &page).await.unwrap();
            names.extend(found.rows.into_iter().map(|f| f.customer.name.unwrap_or_default()));
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        page.after = None;
    }
    assert_eq!(names, ["汪芳", "王瑞宏", "黄旺", "汪芳", "王瑞宏", "黄旺"]);

    if let Db::Postgres(_) = one {
        let statements = one
            .fetch_all(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements \
                 WHERE statement LIKE '%FROM rm_customer_keys k %'",
                &[],
            )
            .await
            .unwrap();
        assert!(!statements.is_empty(), "the lookups ran prepared statements");
        let mut generic = 0;
        for row in &statements {
            let statement = row.text("statement").unwrap();
            assert_eq!(row.int("custom_plans").unwrap(), 0, "planned per execution: {statement}");
            generic += row.int("generic_plans").unwrap();
        }
        assert!(generic >= 6, "six lookups or more ran on generic plans, not {generic}");
        let mode =
            one.fetch_all("SELECT current_setting('plan_cache_mode') AS mode", &[]).await.unwrap();
        assert_eq!(mode[0].text("mode").unwrap(), "auto", "the mode ends with the lookup");

        // A page never waits for parallel workers to start; other statements may use them.
        let workers = "SELECT current_setting('max_parallel_workers_per_gather') AS n";
        let mut read = one.begin_generic_read().await.unwrap();
        assert_eq!(read.fetch_all(workers, &[]).await.unwrap()[0].text("n").unwrap(), "0");
        read.finish().await.unwrap();
        assert_ne!(one.fetch_all(workers, &[]).await.unwrap()[0].text("n").unwrap(), "0");
    }
}

//! Fresh databases for tests: an SQLite file in a temp dir, or a PostgreSQL database of
//! its own on a server shared by the test process.
//!
//! PostgreSQL comes from `KEFU_TEST_DATABASE_URL` (any database on a server where the
//! user may `CREATE DATABASE`), or else from a throwaway cluster this crate starts from
//! the installed binaries (`pg_config --bindir`, or `/usr/lib/postgresql/*/bin`), as the
//! `postgres` OS user when running as root. The cluster dies with the test process: a
//! watchdog shell holds our end of a pipe and stops the server when it closes.
//!
//! Without PostgreSQL, [`postgres`] returns `None` so a test can skip, except when `CI`
//! is set: there a missing server is a failure, never a silent skip.

mod cluster;

use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use tokio::sync::OnceCell;

/// Which backend a [`TestDatabase`] lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database nobody else uses; gone (or left for the cluster's cleanup) when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    dir: Option<TempDir>,
    /// Set for a persistent server: the database to drop afterwards.
    drop_on_exit: Option<(String, String)>,
}

impl TestDatabase {
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite file (not yet created until a store opens it); `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let dir = self.dir.as_ref().filter(|_| self.backend == Backend::Sqlite)?;
        Some(dir.path().join("kefu.db"))
    }

    /// A directory that lives as long as this database, for files a test needs.
    pub fn scratch_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.drop_on_exit.take() else { return };
        // Drop may run inside a runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = admin.execute(sql.as_str()).await;
                    }
                });
            }
        })
        .join();
    }
}

/// One `#[tokio::test]` per backend for each named `async fn(&TestDatabase)`, in modules
/// `sqlite` and `postgres`, on a multi-threaded runtime of `workers` threads; the
/// PostgreSQL test returns early only when [`postgres`] has no server (never in CI).
#[macro_export]
macro_rules! on_both_databases {
    (workers = $workers:tt; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
                async fn $name() {
                    super::$name(&$crate::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
                async fn $name() {
                    let Some(db) = $crate::postgres().await else { return };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

/// A fresh SQLite database file in a new temp dir.
pub fn sqlite() -> TestDatabase {
    let dir = tempfile::Builder::new().prefix("kefu-test-").tempdir().expect("create temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    TestDatabase { url, backend: Backend::Sqlite, dir: Some(dir), drop_on_exit: None }
}

/// A fresh PostgreSQL database, or `None` when no server can be had outside CI.
///
/// # Panics
/// When `CI` is set and no server can be had, or the server refuses a new database.
pub async fn postgres() -> Option<TestDatabase> {
    static SERVER: OnceCell<Result<Server, String>> = OnceCell::const_new();
    let server = SERVER.get_or_init(|| async { Server::find_or_start().await }).await;
    let server = match server {
        Ok(server) => server,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but no PostgreSQL server can be had: {why}")
        }
        Err(why) => {
            eprintln!("skipping PostgreSQL test: {why}");
            return None;
        }
    };
    let name = format!("kefu_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&server.admin_url)
        .await
        .unwrap_or_else(|error| panic!("connect to test server: {error}"));
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|error| panic!("create test database: {error}"));
    let dir = tempfile::Builder::new().prefix("kefu-test-").tempdir().expect("create temp dir");
    Some(TestDatabase {
        url: with_database(&server.admin_url, &name),
        backend: Backend::Postgres,
        dir: Some(dir),
        drop_on_exit: server.persistent.then(|| (server.admin_url.clone(), name)),
    })
}

/// A fresh database on a PostgreSQL primary that a hot standby replicates, and the URL
/// of the same database on the standby (read-only, a little behind), or `None` when no
/// PostgreSQL can be had outside CI. The two clusters are started once per process.
///
/// # Panics
/// When `CI` is set and the clusters cannot be had, or the primary refuses a database.
pub async fn replicated_postgres() -> Option<(TestDatabase, String)> {
    static PAIR: OnceCell<Result<(cluster::Cluster, cluster::Cluster), String>> =
        OnceCell::const_new();
    let pair = PAIR
        .get_or_init(|| async {
            let primary = tokio::task::spawn_blocking(cluster::start_primary)
                .await
                .map_err(|error| format!("primary start panicked: {error}"))??;
            cluster::wait_ready(&primary.url).await?;
            let standby = {
                let primary = primary.clone();
                tokio::task::spawn_blocking(move || cluster::start_standby(&primary))
                    .await
                    .map_err(|error| format!("standby start panicked: {error}"))??
            };
            cluster::wait_ready(&standby.url).await?;
            Ok((primary, standby))
        })
        .await;
    let (primary, standby) = match pair {
        Ok(pair) => pair,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but no replicated PostgreSQL can be had: {why}")
        }
        Err(why) => {
            eprintln!("skipping replicated PostgreSQL test: {why}");
            return None;
        }
    };
    let name = format!("kefu_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&primary.url)
        .await
        .unwrap_or_else(|error| panic!("connect to the primary: {error}"));
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|error| panic!("create test database: {error}"));
    let standby_url = with_database(&standby.url, &name);
    // The new database reaches the standby with the WAL that created it.
    cluster::wait_ready(&standby_url).await.unwrap_or_else(|why| panic!("{why}"));
    let dir = tempfile::Builder::new().prefix("kefu-test-").tempdir().expect("create temp dir");
    let primary_db = TestDatabase {
        url: with_database(&primary.url, &name),
        backend: Backend::Postgres,
        dir: Some(dir),
        drop_on_exit: None,
    };
    Some((primary_db, standby_url))
}

/// A database on the given backend: SQLite always, PostgreSQL when one can be had.
pub async fn database(backend: Backend) -> Option<TestDatabase> {
    match backend {
        Backend::Sqlite => Some(sqlite()),
        Backend::Postgres => postgres().await,
    }
}

#[derive(Debug)]
struct Server {
    admin_url: String,
    /// True for a server from `KEFU_TEST_DATABASE_URL`: clean up after ourselves there.
    persistent: bool,
}

impl Server {
    async fn find_or_start() -> Result<Server, String> {
        if let Ok(url) = std::env::var("KEFU_TEST_DATABASE_URL") {
            PgConnection::connect(&url)
                .await
                .map_err(|error| format!("KEFU_TEST_DATABASE_URL is set but: {error}"))?;
            return Ok(Server { admin_url: url, persistent: true });
        }
        let admin_url = tokio::task::spawn_blocking(cluster::start)
            .await
            .map_err(|error| format!("cluster start panicked: {error}"))??;
        cluster::wait_ready(&admin_url).await?;
        Ok(Server { admin_url, persistent: false })
    }
}

/// The same server URL pointing at another database.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}

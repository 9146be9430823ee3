//! Throwaway PostgreSQL clusters that live exactly as long as the test process: a
//! single one, or a primary with a streaming hot standby (made with `pg_basebackup`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// Our ends of the watchdogs' stdin. Never written to; when the process exits the OS
/// closes them, each watchdog's `read` returns, and it stops its server and removes
/// the cluster's directory. Kept in a static so nothing closes them earlier.
static WATCHDOGS: Mutex<Vec<(Child, ChildStdin)>> = Mutex::new(Vec::new());

/// A running cluster.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    /// The superuser URL (database `postgres`).
    pub url: String,
    pub port: u16,
}

/// Initialises and starts a cluster; returns the superuser URL.
pub(crate) fn start() -> Result<String, String> {
    Ok(start_primary()?.url)
}

/// Initialises and starts a cluster that standbys can replicate from.
pub(crate) fn start_primary() -> Result<Cluster, String> {
    let bindir = find_bindir()?;
    let as_root = is_root();
    let root = cluster_dir(as_root)?;
    let data = root.join("data");
    let initdb = run_as_postgres(as_root, &bindir.join("initdb"))
        .args(["-D", &data.to_string_lossy(), "-U", "postgres", "--auth=trust"])
        .args(["-E", "UTF8", "--locale=C", "--no-sync"])
        .output()
        .map_err(|error| format!("run initdb: {error}"))?;
    if !initdb.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr)));
    }
    launch(&bindir, as_root, &root)
}

/// A hot standby of `primary`, streaming its WAL: a base backup (`pg_basebackup -R`
/// writes `standby.signal` and the connection to the primary), then a server on it.
/// The primary must be up.
pub(crate) fn start_standby(primary: &Cluster) -> Result<Cluster, String> {
    let bindir = find_bindir()?;
    let as_root = is_root();
    let root = cluster_dir(as_root)?;
    let data = root.join("data");
    let backup = run_as_postgres(as_root, &bindir.join("pg_basebackup"))
        .args(["-D", &data.to_string_lossy(), "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &primary.port.to_string(), "-X", "stream", "-R", "--no-sync"])
        .output()
        .map_err(|error| format!("run pg_basebackup: {error}"))?;
    if !backup.status.success() {
        return Err(format!("pg_basebackup failed: {}", String::from_utf8_lossy(&backup.stderr)));
    }
    launch(&bindir, as_root, &root)
}

/// A new directory for a cluster, owned by the `postgres` user when we are root.
fn cluster_dir(as_root: bool) -> Result<PathBuf, String> {
    let root = tempfile::Builder::new()
        .prefix("kefu-testpg-")
        .tempdir()
        .map_err(|error| format!("create cluster dir: {error}"))?
        .keep();
    if as_root {
        chown_to_postgres(&root)?;
    }
    Ok(root)
}

/// Starts a server on `root/data`, on a free port, under a watchdog.
fn launch(bindir: &Path, as_root: bool, root: &Path) -> Result<Cluster, String> {
    let data = root.join("data");
    let port = free_port()?;
    // The watchdog starts postgres, waits for EOF on stdin, then stops it and cleans up.
    let script = r#"
        "$0" -D "$1" -p "$2" -k "$3" -c listen_addresses=127.0.0.1 \
            -c fsync=off -c full_page_writes=off -c max_connections=400 \
            -c shared_buffers=64MB >"$3/server.log" 2>&1 &
        pid=$!
        read -r _ignored
        kill -INT "$pid"
        wait "$pid"
        rm -rf "$3"
    "#;
    let mut child = run_as_postgres(as_root, Path::new("sh"))
        .args(["-c", script])
        .arg(bindir.join("postgres"))
        .arg(&data)
        .arg(port.to_string())
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("start postgres: {error}"))?;
    let stdin = child.stdin.take().ok_or("watchdog has no stdin")?;
    WATCHDOGS.lock().map_err(|_| "watchdog lock poisoned")?.push((child, stdin));
    Ok(Cluster { url: format!("postgres://postgres@127.0.0.1:{port}/postgres"), port })
}

/// Waits until the new server accepts connections.
pub(crate) async fn wait_ready(url: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match PgConnection::connect(url).await {
            Ok(conn) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Err(error) if Instant::now() > deadline => {
                return Err(format!("test cluster did not come up: {error}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn find_bindir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|entry| entry.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|dir| has_server(dir))
        .ok_or_else(|| "no PostgreSQL server binaries (initdb, postgres) found".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// PostgreSQL refuses to run as root; as root, run its commands as the `postgres` user.
fn run_as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|error| format!("look up the postgres user: {error}"))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| "running as root but there is no postgres user".to_owned())
    };
    std::os::unix::fs::chown(dir, Some(id("-u")?), Some(id("-g")?))
        .map_err(|error| format!("chown cluster dir: {error}"))
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|error| format!("find a free port: {error}"))?;
    listener.local_addr().map(|addr| addr.port()).map_err(|error| error.to_string())
}

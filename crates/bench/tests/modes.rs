//! Every benchmark mode runs (briefly, on a fresh SQLite file) and ends with its JSON
//! figures. These prove the modes work; the numbers mean nothing in a debug build.

use std::process::Command;

fn run(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_kefu-bench")).args(args).output().expect("run");
    assert!(
        output.status.success(),
        "kefu-bench {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().expect("a last line");
    let figures: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    for field in ["events_per_s", "commands_per_s", "p50_ms", "p99_ms"] {
        assert!(figures[field].is_number(), "{args:?}: no {field} in {last}");
    }
    println!("{last}");
    figures
}

#[test]
fn every_mode_prints_its_figures() {
    let brief = ["--duration", "0.5", "--concurrency", "2"];
    let with = |mode: &str, extra: &[&str]| {
        let mut args = vec![mode];
        args.extend(brief);
        args.extend(extra);
        run(&args)
    };
    assert!(with("baseline", &[])["events"].as_u64().unwrap() > 0);
    assert!(with("append", &[])["commands"].as_u64().unwrap() > 0);
    assert_eq!(with("lifecycle", &["--history", "12"])["history_events"], 12);
    assert!(with("rebuild", &["--events", "300"])["events"].as_u64().unwrap() >= 300);
    assert!(with("lag", &["--rate", "50"])["commands"].as_u64().unwrap() > 0);
    assert!(with("replay", &["--history", "30"])["commands"].as_u64().unwrap() > 0);
    assert!(with("query", &["--events", "300"])["queries_per_s"].as_f64().unwrap() > 0.0);
    let find = with("find", &["--customers", "300"]);
    assert!(find["by_kind"]["phone"]["lookups"].as_u64().unwrap() > 0, "{find}");
    assert!(find["by_kind"]["name"]["lookups"].as_u64().unwrap() > 0, "{find}");
}

#[test]
fn find_times_again_a_database_it_seeded_and_only_such_a_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("find.db").display());
    let brief = ["find", "--duration", "0.2", "--customers", "200", "--database-url", &url];
    assert_eq!(run(&brief)["reused"], false);
    let again = run(&[&brief[..], &["--reuse"]].concat());
    assert_eq!(again["reused"], true, "{again}");
    assert!(again["by_kind"]["pinyin"]["lookups"].as_u64().unwrap() > 0, "{again}");
    let other = format!("sqlite://{}", dir.path().join("empty.db").display());
    let empty = Command::new(env!("CARGO_BIN_EXE_kefu-bench"))
        .args(["find", "--duration", "0.2", "--customers", "200", "--reuse"])
        .args(["--database-url", &other])
        .output()
        .expect("run");
    assert!(!empty.status.success(), "--reuse timed lookups over an empty database");
}

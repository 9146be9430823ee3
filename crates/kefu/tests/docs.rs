//! docs/operations.md stays true: every flag of `kefu serve` and every metric kefu
//! exports is documented there.

use std::process::Command;

fn operations_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md");
    std::fs::read_to_string(path).expect("read docs/operations.md")
}

#[test]
fn every_serve_flag_and_metric_is_documented() {
    let help = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--help"])
        .output()
        .expect("run kefu serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = help
        .split_whitespace()
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|word| word.starts_with("--") && *word != "--help")
        .collect();
    assert!(flags.len() >= 19, "flags found in the help: {flags:?}");
    let doc = operations_doc();
    for flag in flags {
        assert!(doc.contains(&format!("`{flag}`")), "{flag} is not in docs/operations.md");
    }
    for metric in kefu::METRIC_NAMES {
        assert!(doc.contains(&format!("`{metric}`")), "{metric} is not in docs/operations.md");
    }
}

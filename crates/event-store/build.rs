//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds
//! `migrations/{sqlite,postgres}` at compile time, and cargo does not watch them itself.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}

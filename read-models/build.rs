//! `sqlx::migrate!` embeds `migrations/` at compile time: a migration added or changed must
//! rebuild this crate even when no Rust source changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

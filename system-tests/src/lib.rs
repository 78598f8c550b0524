//! orderstream's system tests: the end-to-end tests (`tests/e2e`) run command-api, the
//! projectors and query-api together against the real Kafka broker and PostgreSQL, and the
//! system benchmark (`benches/system/`, run by `deploy/local/bench`) measures them against raw
//! Kafka and PostgreSQL limits; the chaos driver (`src/bin/chaos`, run by
//! `deploy/local/chaos`) kills processes of a local cluster under load and proves nothing
//! acknowledged was lost or doubled. The crate exists so that no service depends on another one
//! just to be tested with it; its library holds only what the benchmark compares us with and
//! how it drives it:
//!
//! - `peer`: the same order placement handled in process by cqrs-es on PostgreSQL;
//! - `load`: the closed loop of concurrent tasks that drives both the peer and the HTTP load;
//! - [`release_dir`]: where the services' binaries are, for what runs them as processes.

pub mod load;
pub mod peer;

use std::path::{Path, PathBuf};

/// The directory of the services' release binaries, next to the running test's or benchmark's
/// own executable (`target/release/deps/`). `cargo test --workspace` builds them with the
/// tests; run alone, a test needs `cargo build --release --bins` first.
pub fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/release")
        .to_path_buf();
    for binary in ["command-api", "projectors", "query-api"] {
        assert!(
            dir.join(binary).exists(),
            "build the services first: cargo build --release --bins"
        );
    }
    dir
}

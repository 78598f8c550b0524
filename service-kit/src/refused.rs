//! The check that a service's settings refuse, as they are read, what could never work: for
//! the tests of every crate with settings, this one's included.

/// A service's settings `A` alone, as its command line reads them.
#[derive(Debug, clap::Parser)]
struct Settings<A: clap::Args> {
    #[command(flatten)]
    settings: A,
}

/// Asserts that settings `A` refuse each `(flag, value)` as they are read, naming the flag: a
/// setting that could never work stops the service before it starts, not at its first use.
pub fn assert_settings_refused<A: clap::Args>(cases: &[(&str, &str)]) {
    use clap::Parser as _;
    for (flag, value) in cases {
        let error = Settings::<A>::try_parse_from(["service".to_owned(), format!("{flag}={value}")])
            .err()
            .unwrap_or_else(|| panic!("{flag}={value} is accepted"));
        assert!(error.to_string().contains(flag), "{flag} {value:?}: {error}");
    }
}

//! Durations in settings, written as people do (`250ms`, `5s`, `1m 30s`). Each replaced an
//! integer setting in milliseconds whose name ended in `_MS`; the old name is still read, as the
//! deprecated one, and wins over the new one's default (giving both is an error).

use std::time::Duration;

/// Parses a setting such as `250ms` or `5s`; for clap's `value_parser`.
pub fn parse(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

/// Parses a setting that must be above zero: a timeout or an interval, which at zero would
/// fail every attempt or spin; for clap's `value_parser`.
pub fn positive(text: &str) -> Result<Duration, String> {
    match parse(text) {
        Ok(duration) if duration.is_zero() => Err("must be above zero".to_owned()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(error.to_string()),
    }
}

/// The duration a setting names: `deprecated_ms`, its `_MS` predecessor, when that was given,
/// else `duration`.
pub fn or_deprecated_ms(duration: Duration, deprecated_ms: Option<u64>) -> Duration {
    deprecated_ms.map_or(duration, Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::refused::assert_settings_refused;

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long, default_value = "5ms", value_parser = parse)]
        linger: Duration,
        #[arg(long, conflicts_with = "linger")]
        linger_ms: Option<u64>,
        #[arg(long, default_value = "1s", value_parser = positive)]
        interval: Duration,
    }

    impl Cli {
        fn linger(args: &[&str]) -> Result<Duration, clap::Error> {
            let cli = Self::try_parse_from(std::iter::once("test").chain(args.iter().copied()))?;
            Ok(or_deprecated_ms(cli.linger, cli.linger_ms))
        }
    }

    #[test]
    fn durations_read_as_written_and_the_old_milliseconds_still_count() {
        assert_eq!(Cli::linger(&[]).unwrap(), Duration::from_millis(5));
        assert_eq!(Cli::linger(&["--linger", "250ms"]).unwrap(), Duration::from_millis(250));
        assert_eq!(Cli::linger(&["--linger", "1m 30s"]).unwrap(), Duration::from_secs(90));
        assert_eq!(Cli::linger(&["--linger-ms", "40"]).unwrap(), Duration::from_millis(40));
        assert!(Cli::linger(&["--linger", "5"]).is_err(), "a bare number has no unit");
        assert!(Cli::linger(&["--linger", "1s", "--linger-ms", "40"]).is_err());
    }

    #[test]
    fn a_timeout_or_interval_of_zero_is_refused_naming_the_setting() {
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()));
        assert_eq!(
            parse(&["--interval", "250ms"]).unwrap().interval,
            Duration::from_millis(250)
        );
        assert_settings_refused::<Cli>(&[("--interval", "0s"), ("--interval", "0ms"), ("--interval", "0")]);
        let error = parse(&["--interval", "0s"]).unwrap_err().to_string();
        assert!(error.contains("must be above zero"), "{error}");
    }
}

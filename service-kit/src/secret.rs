//! Secrets in settings: held as [`SecretString`] (whose `Debug` prints `[REDACTED]`, and which
//! is wiped from memory when dropped), given either inline in a variable (`JWT_SECRET`) or as a
//! file named by a `_FILE` variable (`JWT_SECRET_FILE`), the way Kubernetes and Vault agents
//! deliver them.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

pub use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;

/// Why a secret could not be read.
#[derive(Debug, Error)]
pub enum SecretError {
    /// `variable` and `file_variable` both given: which one wins would be a guess.
    #[error("both {variable} and {file_variable} are set: give one")]
    Both {
        variable: &'static str,
        file_variable: &'static str,
    },
    #[error("cannot read {file_variable} ({}): {source}", .path.display())]
    ReadFile {
        file_variable: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file_variable} ({}) is empty", .path.display())]
    EmptyFile { file_variable: &'static str, path: PathBuf },
    #[error("{variable} (or {file_variable}) is required")]
    Missing {
        variable: &'static str,
        file_variable: &'static str,
    },
}

/// Where one secret may come from, named as in the environment.
#[derive(Debug, Clone, Copy)]
pub struct SecretSource<'a> {
    /// The variable holding the secret itself, e.g. `JWT_SECRET`.
    pub variable: &'static str,
    pub value: Option<&'a SecretString>,
    /// The variable naming a file that holds it, e.g. `JWT_SECRET_FILE`.
    pub file_variable: &'static str,
    pub file: Option<&'a Path>,
}

impl SecretSource<'_> {
    /// The secret, from the value or from the file; `None` when neither is given. Empty values
    /// and paths (`JWT_SECRET=` in a compose file) count as not given. One trailing line break
    /// of the file is dropped, as `echo` and most editors add one.
    pub fn read(&self) -> Result<Option<SecretString>, SecretError> {
        let value = self.value.filter(|value| !value.expose_secret().is_empty());
        let file = self.file.filter(|path| !path.as_os_str().is_empty());
        match (value, file) {
            (Some(_), Some(_)) => Err(SecretError::Both {
                variable: self.variable,
                file_variable: self.file_variable,
            }),
            (Some(value), None) => Ok(Some(value.clone())),
            (None, Some(path)) => self.read_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// [`SecretSource::read`], failing when neither is given.
    pub fn require(&self) -> Result<SecretString, SecretError> {
        self.read()?.ok_or(SecretError::Missing {
            variable: self.variable,
            file_variable: self.file_variable,
        })
    }

    fn read_file(&self, path: &Path) -> Result<SecretString, SecretError> {
        let mut text = std::fs::read_to_string(path).map_err(|source| SecretError::ReadFile {
            file_variable: self.file_variable,
            path: path.to_owned(),
            source,
        })?;
        let kept = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .map_or(text.len(), str::len);
        text.truncate(kept);
        if text.is_empty() {
            return Err(SecretError::EmptyFile {
                file_variable: self.file_variable,
                path: path.to_owned(),
            });
        }
        Ok(SecretString::from(text))
    }
}

/// A clap value parser for secrets: `#[arg(value_parser = secret::parse)]`.
pub fn parse(text: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(value: Option<&'a SecretString>, file: Option<&'a Path>) -> SecretSource<'a> {
        SecretSource {
            variable: "TOKEN",
            value,
            file_variable: "TOKEN_FILE",
            file,
        }
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("orderstream-secret-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("temp file");
        path
    }

    #[test]
    fn a_secret_comes_from_the_value_or_the_file() {
        let inline = SecretString::from("inline-secret");
        let read = source(Some(&inline), None).read().expect("readable").expect("given");
        assert_eq!(read.expose_secret(), "inline-secret");

        let path = temp_file("crlf", "from-a-file\r\n");
        let from_file = source(None, Some(&path))
            .require()
            .map(|s| s.expose_secret().to_owned());
        let path_lf = temp_file("lf", "from-a-file\n\n");
        let only_one_newline = source(None, Some(&path_lf))
            .require()
            .map(|s| s.expose_secret().to_owned());
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path_lf);
        assert_eq!(from_file.expect("file secret"), "from-a-file");
        assert_eq!(only_one_newline.expect("file secret"), "from-a-file\n");
    }

    #[test]
    fn both_none_missing_and_empty_are_errors_naming_the_variables() {
        let inline = SecretString::from("x");
        let path = temp_file("both", "y");
        let both = source(Some(&inline), Some(&path)).read();
        let _ = std::fs::remove_file(&path);
        let error = both.expect_err("both given");
        assert!(matches!(error, SecretError::Both { .. }));
        assert_eq!(error.to_string(), "both TOKEN and TOKEN_FILE are set: give one");

        let empty = SecretString::from("");
        assert!(source(Some(&empty), Some(Path::new("")))
            .read()
            .expect("fine")
            .is_none());
        let missing = source(None, None).require().expect_err("missing");
        assert_eq!(missing.to_string(), "TOKEN (or TOKEN_FILE) is required");

        let unreadable = source(None, Some(Path::new("/nonexistent/secret"))).read();
        assert!(
            matches!(&unreadable, Err(SecretError::ReadFile { .. })),
            "{unreadable:?}"
        );
        let blank = temp_file("blank", "\n");
        let blank_read = source(None, Some(&blank)).read();
        let _ = std::fs::remove_file(&blank);
        assert!(matches!(blank_read, Err(SecretError::EmptyFile { .. })));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = parse("hunter2-but-longer").expect("infallible");
        let debug = format!("{secret:?} {:?}", source(Some(&secret), None));
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}

//! One error type for the crate. Every message names the thing to fix:
//! the file, the shape, or the value that was rejected.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in `diffusion_regimes`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A TOML or JSON file that does not parse into what it should hold.
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An error met while working on the file or folder `path` (a config
    /// being checked, a sweep's cell), kept whole so a caller can still
    /// tell a missing file from a bad value.
    #[error("{path}: {source}")]
    At { path: PathBuf, source: Box<Error> },
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    #[error("invalid {name} = {value}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    /// The work was interrupted (`jobs::interrupt`, Ctrl-C in
    /// Python); what it had finished is on disk and a rerun resumes.
    #[error("interrupted")]
    Interrupted,
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("linear algebra failed: {0}")]
    Linalg(String),
    /// Training produced a non-finite loss, gradient norm or weight; the
    /// run's last checkpoint is from before it.
    #[error("training diverged at step {step}: {what} = {value}; the last checkpoint before it is kept; lower the learning rate or the clipping norm")]
    Diverged { step: u64, what: String, value: f64 },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn format(path: &Path, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub fn parse(path: &Path, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        }
    }

    pub fn at(path: &Path, source: Error) -> Self {
        Error::At {
            path: path.to_path_buf(),
            source: Box::new(source),
        }
    }

    /// The error itself, under any [`Error::At`] wrappers.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::At { source, .. } => source.innermost(),
            other => other,
        }
    }

    pub fn shape(what: impl Into<String>, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    pub fn invalid(
        name: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Rejects a noise level that is not a positive finite number.
pub fn check_sigma(sigma: f64) -> Result<()> {
    if sigma.is_finite() && sigma > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "sigma",
            sigma,
            "must be a finite number > 0",
        ))
    }
}

/// A unit variant of `T` from its serde name (`cosine`, `centered-cosine`,
/// `epochs`, `ema`, ...): the command line parses into the library's own
/// enums with this instead of mirroring them. The error lists the names.
pub fn parse_variant<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|e| Error::invalid("value", text, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_errors_keep_their_kind_and_message() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = Error::at(
            Path::new("cells/n2"),
            Error::io(Path::new("a.npy"), missing),
        );
        assert!(matches!(
            e.innermost(),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound
        ));
        assert!(e.to_string().starts_with("cells/n2: a.npy: "), "{e}");
        let bad = serde_json::from_str::<u32>("x").unwrap_err();
        let e = Error::parse(Path::new("r.json"), bad);
        assert!(std::error::Error::source(&e).is_some());
    }
}

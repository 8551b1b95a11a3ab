//! Use-cases: what hookd does, independent of how it was asked (API, dashboard, CLI).
//!
//! Each function takes the shared [`Services`], the caller's environment and typed input,
//! enforces the rules, and returns domain records or an [`OpsError`]. Nothing here knows about
//! HTTP.

pub mod applications;
pub mod attempts;
pub mod codes;
pub mod destinations;
pub mod endpoints;
pub mod event_types;
pub mod messages;
pub mod outbox;
pub mod replay;
pub mod services;

pub use codes::ErrorCode;
pub use services::Services;

use hookd_core::validate::FieldError;
use hookd_store::StoreError;

/// Why a use-case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The addressed record does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule (uid, event id, name).
    #[error("{detail}")]
    Conflict {
        /// Machine-readable code.
        code: ErrorCode,
        /// Sentence for people.
        detail: String,
    },
    /// One or more fields are invalid.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A request that is well-formed but cannot be carried out.
    #[error("{detail}")]
    BadRequest {
        /// Machine-readable code.
        code: ErrorCode,
        /// Sentence for people.
        detail: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FieldError> for OpsError {
    fn from(e: FieldError) -> OpsError {
        OpsError::Invalid(vec![e])
    }
}

/// Result alias for use-cases.
pub type OpsResult<T> = Result<T, OpsError>;

/// Collects field errors so a request reports all of them at once.
#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// Records `check`'s error, if any.
    pub fn check(&mut self, check: Result<(), FieldError>) {
        if let Err(e) = check {
            self.0.push(e);
        }
    }

    /// `Err(Invalid)` when anything was recorded.
    pub fn finish(self) -> OpsResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(OpsError::Invalid(self.0))
        }
    }
}

/// Deserializes a field that distinguishes "absent" (`None`, via `#[serde(default)]`) from
/// "explicitly null" (`Some(None)`), as PATCH bodies need.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

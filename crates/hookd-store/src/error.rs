//! Errors every backend maps its driver errors into.

/// What went wrong in the store, in terms the API can turn into a status code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record addressed does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (uid, event id, event type name).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database cannot be reached or refused the work; callers answer 503.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or corrupt data.
    #[error("storage failure")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any error as `Internal`.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Internal(Box::new(e))
    }

    /// An internal error described by a sentence.
    pub fn message(msg: impl Into<String>) -> StoreError {
        StoreError::Internal(msg.into().into())
    }
}

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

/// The cause inside [`StoreError::Unavailable`] when the database has no room left: its disk,
/// or a size limit on its files, is full. Nothing was written; writes work again once space is
/// freed. The API answers `507 Insufficient Storage` for it.
#[derive(Debug, thiserror::Error)]
#[error("the database has no room left: {0}")]
pub struct StorageFull(pub String);

impl StoreError {
    /// `Unavailable` because the database has no room left ([`StorageFull`]).
    pub fn storage_full(why: impl Into<String>) -> StoreError {
        StoreError::Unavailable(Box::new(StorageFull(why.into())))
    }

    /// Whether this is [`StoreError::storage_full`].
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StoreError::Unavailable(cause) if cause.is::<StorageFull>())
    }

    /// Wraps any error as `Internal`.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Internal(Box::new(e))
    }

    /// An internal error described by a sentence.
    pub fn message(msg: impl Into<String>) -> StoreError {
        StoreError::Internal(msg.into().into())
    }
}

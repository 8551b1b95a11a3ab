//! The connection pool, reached only through what a call means to do with it, so the write
//! gate ([`hookd_store::gate`]) is checked in one place: [`Pool::write`].

use hookd_store::StoreResult;
use sqlx::postgres::PgPool;

/// The store's connections. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub(crate) struct Pool(PgPool);

impl Pool {
    pub(crate) fn new(pool: PgPool) -> Pool {
        Pool(pool)
    }

    /// For a statement or transaction that changes data: refused, without touching the
    /// database, once the current request's deadline has closed its write gate; otherwise
    /// marks that the request has begun writing.
    pub(crate) fn write(&self) -> StoreResult<&PgPool> {
        hookd_store::gate::begin_write()?;
        Ok(&self.0)
    }

    /// For reads, which never need the gate.
    pub(crate) fn read(&self) -> &PgPool {
        &self.0
    }

    /// For a request's own bookkeeping (its idempotency key), which is written whatever the
    /// gate says: releasing a key after a timeout must still happen.
    pub(crate) fn bookkeeping(&self) -> &PgPool {
        &self.0
    }

    /// For the store's own upkeep: migrations, closing, the pool's state in `Debug`.
    pub(crate) fn admin(&self) -> &PgPool {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The functions in `source` that change data through
    /// [`Pool::read`](super::Pool::read), which would bypass the write gate.
    fn writes_through_read(source: &str) -> Vec<String> {
        let changes = ["INSERT INTO", "UPDATE ", "DELETE FROM"];
        // Each piece starts at a function's name: after `fn ` at the start of a line, at any
        // indentation and with any qualifiers before it.
        let starts: Vec<usize> = source
            .match_indices("fn ")
            .filter(|(at, _)| {
                let line = source[..*at].rsplit('\n').next().unwrap_or("");
                line.split_whitespace()
                    .all(|w| matches!(w, "pub" | "pub(crate)" | "async" | "const" | "unsafe"))
            })
            .map(|(at, _)| at + "fn ".len())
            .collect();
        let ends = starts.iter().skip(1).copied().chain([source.len()]);
        starts
            .iter()
            .zip(ends)
            .map(|(&start, end)| &source[start..end])
            .filter(|f| changes.iter().any(|c| f.contains(c)) && f.contains("pool.read()"))
            .map(|f| f.split(['(', '<']).next().unwrap_or(f).to_string())
            .collect()
    }

    #[test]
    fn every_change_goes_through_the_gated_write_pool() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join("store.rs")];
        for entry in std::fs::read_dir(src.join("store")).unwrap() {
            files.push(entry.unwrap().path());
        }
        let mut broken = Vec::new();
        let mut writes = 0;
        for path in &files {
            let source = std::fs::read_to_string(path).unwrap();
            writes += source.matches("pool.write()?").count();
            broken.extend(writes_through_read(&source));
        }
        assert!(files.len() >= 9 && writes >= 30, "the store's sources are read");
        assert!(broken.is_empty(), "changes made through the read pool: {broken:?}");
    }

    #[test]
    fn a_change_through_the_read_pool_is_caught() {
        let source = "impl X {\n    async fn get(&self) { q(\"SELECT 1\").fetch_one(self.pool.read()) }\n    \
                      async fn bump(&self) { q(\"UPDATE t SET n = 1\").execute(self.pool.read()) }\n    \
                      async fn drop(&self) { q(\"DELETE FROM t\").execute(self.pool.write()?) }\n}\n\
                      pub(crate) fn helper() { q(\"INSERT INTO t\") }\n\
                      async fn late(&self) { q(\"SELECT 2\").fetch_one(self.pool.read()) }\n";
        assert_eq!(writes_through_read(source), ["bump"]);
    }
}

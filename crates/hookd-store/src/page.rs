//! Keyset pagination in Svix's shape.
//!
//! A page is asked for with a `limit` and an optional cursor. The cursor is the key (id or
//! name) of the last item seen; a cursor that starts with `-` walks backwards from the first
//! item of the page. Backends fetch `limit + 1` rows to learn whether more follow.

/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub const MAX_LIMIT: usize = 250;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The key to continue after (exclusive).
    pub key: String,
    /// Walk against the list's order (from a `prevIterator`).
    pub backwards: bool,
}

impl Cursor {
    /// Parses an iterator string (`"ep_…"` or `"-ep_…"`).
    pub fn parse(iterator: &str) -> Option<Cursor> {
        let (key, backwards) = match iterator.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (iterator, false),
        };
        (!key.is_empty()).then(|| Cursor {
            key: key.to_string(),
            backwards,
        })
    }
}

/// A request for one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=250.
    pub limit: usize,
    /// Continue from here.
    pub cursor: Option<Cursor>,
    /// Oldest (smallest key) first, rather than newest first.
    pub ascending: bool,
}

impl PageRequest {
    /// First page of `limit` items in the given order.
    pub fn first(limit: usize, ascending: bool) -> PageRequest {
        PageRequest {
            limit,
            cursor: None,
            ascending,
        }
    }

    /// Whether the SQL should sort ascending (the list order, flipped when walking backwards).
    pub fn scan_ascending(&self) -> bool {
        self.ascending ^ self.cursor.as_ref().is_some_and(|c| c.backwards)
    }

    /// Turns `limit + 1` fetched rows (in scan order) into a page in list order.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let has_more = rows.len() > self.limit;
        rows.truncate(self.limit);
        if self.cursor.as_ref().is_some_and(|c| c.backwards) {
            rows.reverse();
        }
        Page { items: rows, has_more }
    }
}

/// One page of results, in list order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// More items exist in the direction of travel.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Maps the items, keeping `has_more`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_more: self.has_more,
        }
    }

    /// Maps the items with a fallible `f`, keeping `has_more`; the first error is returned.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, E>>()?,
            has_more: self.has_more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_parse_with_direction() {
        assert_eq!(
            Cursor::parse("ep_1"),
            Some(Cursor {
                key: "ep_1".into(),
                backwards: false
            })
        );
        assert_eq!(
            Cursor::parse("-ep_1"),
            Some(Cursor {
                key: "ep_1".into(),
                backwards: true
            })
        );
        assert_eq!(Cursor::parse("-"), None);
        assert_eq!(Cursor::parse(""), None);
    }

    #[test]
    fn backwards_pages_scan_in_reverse_and_come_back_in_list_order() {
        let req = PageRequest {
            limit: 2,
            cursor: Cursor::parse("-k"),
            ascending: false,
        };
        assert!(req.scan_ascending());
        let page = req.finish(vec![1, 2, 3]);
        assert_eq!(page.items, vec![2, 1]);
        assert!(page.has_more);
    }
}

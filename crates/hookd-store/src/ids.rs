//! Maps and sets keyed by ids hookd makes: deliveries, endpoints, applications.
//!
//! They hash with foldhash, seeded once per process, which costs the claim's picker, the
//! record batches and the delivery engine a third of what the standard library's SipHash
//! does on these keys (docs/performance.md). Only ids hookd generates may key them: maps
//! keyed by what a caller names (an application's uid, a token) stay on SipHash, so no caller
//! can choose keys that collide to slow hookd down.

pub use foldhash::{HashMap, HashMapExt, HashSet};

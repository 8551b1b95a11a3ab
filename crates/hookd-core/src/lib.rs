//! hookd-core: the domain of hookd and its pure policy.
//!
//! Nothing here performs IO, spawns tasks or reads the clock: time and randomness are passed in,
//! so every rule can be unit-tested in isolation and shared by the API, the dispatcher and the CLI.
//!
//! Module map:
//! - [`id`]: prefixed, time-sortable identifiers (`app_`, `ep_`, `msg_`, `atmpt_`, …).
//! - [`model`]: the domain records (applications, endpoints, event types, messages, attempts).
//! - [`validate`]: field rules shared by every surface (uids, names, channels, headers, URLs).
//! - [`filter`]: which endpoints receive which message (the fan-out rule).
//! - [`retry`]: the retry schedule with jitter, and how an attempt's outcome is classified.
//! - [`net`]: the SSRF address policy (which IP addresses a delivery may connect to).
//! - [`redact`]: URLs shown with their credentials masked.
//! - [`text`]: the stored form of what receivers send back (NUL and invalid UTF-8 escaped).

pub mod filter;
pub mod id;
pub mod model;
pub mod net;
pub mod redact;
pub mod retry;
pub mod text;
pub mod validate;

//! Prefixed, time-sortable identifiers.
//!
//! An id is a type prefix (`app_`, `ep_`, …) followed by a 27-character base62 KSUID-style body:
//! 20 bytes made of a 4-byte big-endian count of seconds since the KSUID epoch (2014-05-13), four
//! bytes of nanoseconds and 12 random bytes. Nanosecond precision keeps ids created in quick
//! succession in creation order (a list shows records in the order they were made). Because the base62 alphabet is in
//! ASCII order and the body has a fixed width, sorting ids as strings sorts them by creation time,
//! which is what keyset pagination and the `before`/`after` filters rely on.

use chrono::{DateTime, TimeZone, Utc};
use rand::RngCore;

/// Seconds between the Unix epoch and the KSUID epoch.
const KSUID_EPOCH: i64 = 1_400_000_000;
const BODY_BYTES: usize = 20;
/// Length of the base62 body of every id.
pub const BODY_LEN: usize = 27;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The kinds of record that carry an id, with their prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `app_`
    Application,
    /// `ep_`
    Endpoint,
    /// `msg_`
    Message,
    /// `atmpt_`
    Attempt,
    /// `msgep_`: one message bound for one endpoint.
    Delivery,
    /// `qtask_`: a background task such as a recovery.
    Task,
    /// `tok_`: an API token's public id.
    Token,
    /// `sess_`: a signed-in browser's session (dashboard or consumer portal).
    Session,
}

impl IdKind {
    /// The prefix including its underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Application => "app_",
            IdKind::Endpoint => "ep_",
            IdKind::Message => "msg_",
            IdKind::Attempt => "atmpt_",
            IdKind::Delivery => "msgep_",
            IdKind::Task => "qtask_",
            IdKind::Token => "tok_",
            IdKind::Session => "sess_",
        }
    }

    /// A fresh id created at `now`.
    pub fn generate<R: RngCore + ?Sized>(self, now: DateTime<Utc>, rng: &mut R) -> String {
        let mut payload = [0u8; 12];
        rng.fill_bytes(&mut payload);
        self.with_payload(now, &payload)
    }

    /// The smallest id that could have been created at `at` (all-zero random part).
    /// Used to turn a timestamp into a keyset bound.
    pub fn lower_bound(self, at: DateTime<Utc>) -> String {
        self.with_payload(at, &[0u8; 12])
    }

    /// Is `s` an id of this kind with a well-formed body?
    pub fn matches(self, s: &str) -> bool {
        s.strip_prefix(self.prefix())
            .is_some_and(|body| body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
    }

    fn with_payload(self, at: DateTime<Utc>, payload: &[u8; 12]) -> String {
        let secs = (at.timestamp() - KSUID_EPOCH).clamp(0, u32::MAX as i64) as u32;
        let nanos = at.timestamp_subsec_nanos().min(999_999_999);
        let mut raw = [0u8; BODY_BYTES];
        raw[..4].copy_from_slice(&secs.to_be_bytes());
        raw[4..8].copy_from_slice(&nanos.to_be_bytes());
        raw[8..].copy_from_slice(payload);
        let mut out = String::with_capacity(self.prefix().len() + BODY_LEN);
        out.push_str(self.prefix());
        out.push_str(std::str::from_utf8(&base62(&raw)).expect("alphabet is ASCII"));
        out
    }
}

/// The creation time encoded in an id body, if it is well formed.
pub fn timestamp_of(id: &str) -> Option<DateTime<Utc>> {
    let body = id.rsplit_once('_').map(|(_, b)| b)?;
    let raw = unbase62(body)?;
    let secs = u32::from_be_bytes(raw[..4].try_into().ok()?) as i64 + KSUID_EPOCH;
    let nanos = u32::from_be_bytes(raw[4..8].try_into().ok()?);
    Utc.timestamp_opt(secs, nanos).single()
}

/// Fixed-width base62 of a 160-bit big-endian number. Long division of five 32-bit limbs by
/// 62^5, which yields five digits per pass: six passes instead of one byte-wise pass per digit
/// (every message and attempt gets an id, so this runs on the hot path).
fn base62(raw: &[u8; BODY_BYTES]) -> [u8; BODY_LEN] {
    const CHUNK: u64 = 62u64.pow(5);
    let mut limbs = [0u32; BODY_BYTES / 4];
    for (limb, bytes) in limbs.iter_mut().zip(raw.chunks_exact(4)) {
        *limb = u32::from_be_bytes(bytes.try_into().expect("four bytes"));
    }
    let mut digits = [0u8; BODY_LEN];
    let mut filled = 0;
    while filled < BODY_LEN {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut() {
            let acc = (rem << 32) | u64::from(*limb);
            *limb = (acc / CHUNK) as u32;
            rem = acc % CHUNK;
        }
        for _ in 0..5 {
            if filled == BODY_LEN {
                break;
            }
            digits[BODY_LEN - 1 - filled] = ALPHABET[(rem % 62) as usize];
            rem /= 62;
            filled += 1;
        }
    }
    digits
}

fn unbase62(body: &str) -> Option<[u8; BODY_BYTES]> {
    if body.len() != BODY_LEN {
        return None;
    }
    let mut out = [0u8; BODY_BYTES];
    for c in body.bytes() {
        let d = ALPHABET.iter().position(|&a| a == c)? as u32;
        let mut carry = d;
        for byte in out.iter_mut().rev() {
            let acc = *byte as u32 * 62 + carry;
            *byte = (acc & 0xff) as u8;
            carry = acc >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    fn at(secs: i64, millis: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, millis * 1_000_000).unwrap()
    }

    #[test]
    fn ids_have_prefix_and_fixed_width_body() {
        let id = IdKind::Message.generate(Utc::now(), &mut rand::thread_rng());
        assert!(id.starts_with("msg_"));
        assert_eq!(id.len(), 4 + BODY_LEN);
        assert!(IdKind::Message.matches(&id));
        assert!(!IdKind::Application.matches(&id));
        assert!(!IdKind::Message.matches("msg_short"));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let mut rng = rand::thread_rng();
        let early = IdKind::Application.generate(at(1_700_000_000, 0), &mut rng);
        let later = IdKind::Application.generate(at(1_700_000_000, 500), &mut rng);
        let much_later = IdKind::Application.generate(at(1_800_000_000, 0), &mut rng);
        assert!(early < later && later < much_later);
    }

    #[test]
    fn lower_bound_sorts_before_every_id_of_that_instant() {
        let t = at(1_750_000_000, 250);
        let bound = IdKind::Message.lower_bound(t);
        let mut rng = StepRng::new(0, 1);
        let id = IdKind::Message.generate(t, &mut rng);
        assert!(bound <= id);
        assert!(bound > IdKind::Message.generate(at(1_750_000_000, 0), &mut rand::thread_rng()));
    }

    #[test]
    fn timestamp_round_trips_exactly() {
        let t = Utc.timestamp_opt(1_795_969_289, 685_123_456).unwrap();
        let id = IdKind::Endpoint.generate(t, &mut rand::thread_rng());
        assert_eq!(timestamp_of(&id), Some(t));
    }

    #[test]
    fn ids_a_nanosecond_apart_still_sort() {
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let a = IdKind::Message.generate(Utc.timestamp_opt(1_800_000_000, 5).unwrap(), &mut rng);
            let b = IdKind::Message.generate(Utc.timestamp_opt(1_800_000_000, 6).unwrap(), &mut rng);
            assert!(a < b);
        }
    }

    #[test]
    fn base62_round_trips_extreme_values() {
        for raw in [[0u8; BODY_BYTES], [0xffu8; BODY_BYTES]] {
            assert_eq!(unbase62(&encoded(&raw)), Some(raw));
        }
        assert_eq!(encoded(&[0xff; BODY_BYTES]), "aWgEPTl1tmebfsQzFP4bxwgy80V");
    }

    fn encoded(raw: &[u8; BODY_BYTES]) -> String {
        String::from_utf8(base62(raw).to_vec()).unwrap()
    }

    /// The digit-by-digit division, one byte at a time: the definition the fast one must match.
    fn base62_bytewise(raw: &[u8; BODY_BYTES]) -> String {
        let mut digits = [0u8; BODY_LEN];
        let mut num = *raw;
        for slot in digits.iter_mut().rev() {
            let mut rem: u32 = 0;
            for byte in num.iter_mut() {
                let acc = (rem << 8) | *byte as u32;
                *byte = (acc / 62) as u8;
                rem = acc % 62;
            }
            *slot = ALPHABET[rem as usize];
        }
        String::from_utf8(digits.to_vec()).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn base62_matches_the_bytewise_definition_and_round_trips(raw in proptest::array::uniform20(proptest::num::u8::ANY)) {
            let fast = encoded(&raw);
            proptest::prop_assert_eq!(&fast, &base62_bytewise(&raw));
            proptest::prop_assert_eq!(unbase62(&fast), Some(raw));
        }
    }
}

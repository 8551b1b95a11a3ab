//! Properties of the code that reads what a stranger sends: the three webhook headers, signing
//! secrets and keys. For any input, parsing and verifying return a result and never panic; a
//! signature made here verifies, and any change to the payload, id or timestamp breaks it.

use hookd_signing::{signature_header, verify, Secret, SigningKey, WebhookHeaders};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000;
const TOLERANCE: i64 = hookd_signing::DEFAULT_TOLERANCE_SECS;

fn secret() -> Secret {
    Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_headers_are_read_and_checked_without_panicking(
        id in ".{0,80}",
        timestamp in ".{0,40}",
        signature in ".{0,300}",
        payload in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let pairs = [("webhook-id", id.as_str()), ("webhook-timestamp", timestamp.as_str()), ("webhook-signature", signature.as_str())];
        if let Ok(headers) = WebhookHeaders::from_pairs(pairs) {
            // A signature nobody made with this secret never verifies.
            prop_assert!(verify(&secret(), &headers, &payload, NOW, TOLERANCE).is_err());
        }
    }

    #[test]
    fn any_secret_or_key_text_is_parsed_without_panicking(text in ".{0,120}") {
        let _ = Secret::parse(&text);
        let _ = Secret::parse_endpoint_secret(&text);
        let _ = SigningKey::parse_endpoint_key(&text);
        let _ = hookd_signing::PublicKey::parse(&text);
    }

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it(
        id in "msg_[A-Za-z0-9]{1,27}",
        skew in -TOLERANCE..=TOLERANCE,
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        flip in any::<usize>(),
    ) {
        let secret = secret();
        let timestamp = NOW + skew;
        let signature = signature_header(&[&secret], &id, timestamp, &payload);
        let ts = timestamp.to_string();
        let read = |id: &str, ts: &str| {
            WebhookHeaders::from_pairs([("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", signature.as_str())]).unwrap()
        };
        prop_assert!(verify(&secret, &read(&id, &ts), &payload, NOW, TOLERANCE).is_ok());
        let mut tampered = payload.clone();
        if tampered.is_empty() {
            tampered.push(b'x');
        } else {
            let at = flip % tampered.len();
            tampered[at] ^= 0x01;
        }
        prop_assert!(verify(&secret, &read(&id, &ts), &tampered, NOW, TOLERANCE).is_err());
        let other_id = id.clone() + "x";
        prop_assert!(verify(&secret, &read(&other_id, &ts), &payload, NOW, TOLERANCE).is_err());
        prop_assert!(verify(&secret, &read(&id, &(timestamp + 1).to_string()), &payload, NOW, TOLERANCE).is_err());
    }
}

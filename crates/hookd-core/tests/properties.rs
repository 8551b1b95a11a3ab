//! Properties of id handling, which reads ids from paths and cursors that anyone can send: any
//! string is answered without panicking, and a generated id gives back its creation time and
//! sorts by it.

use chrono::{TimeZone, Utc};
use hookd_core::id::{timestamp_of, IdKind};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_text_is_read_as_an_id_without_panicking(
        text in prop_oneof![".{0,80}", "[a-z]{1,8}_[0-9A-Za-z]{20,30}", "msg_[0-9A-Za-z]{27}"],
    ) {
        // Reading the time of any text answers, and never panics (27 base62 digits can exceed
        // the 160 bits an id holds: that is `None`, not an overflow).
        let time = timestamp_of(&text);
        if IdKind::Message.matches(&text) {
            prop_assert!(text.starts_with("msg_") && text.len() == 4 + 27, "{}", text);
        } else {
            prop_assert!(!(text.starts_with("msg_") && text.len() == 31 && text[4..].bytes().all(|b| b.is_ascii_alphanumeric())));
        }
        if let Some(t) = time {
            prop_assert!(t.timestamp() >= 1_400_000_000, "times start at the id epoch: {}", t);
        }
    }

    #[test]
    fn an_id_gives_back_its_time_and_sorts_by_it(
        secs in 1_400_000_000i64..4_000_000_000,
        nanos in 0u32..1_000_000_000,
        later in 1i64..1_000_000,
    ) {
        let at = Utc.timestamp_opt(secs, nanos).unwrap();
        let mut rng = rand::thread_rng();
        let id = IdKind::Message.generate(at, &mut rng);
        prop_assert!(IdKind::Message.matches(&id));
        prop_assert_eq!(timestamp_of(&id), Some(at));
        let next = IdKind::Message.generate(at + chrono::Duration::seconds(later), &mut rng);
        prop_assert!(next > id, "ids sort by creation time");
        prop_assert!(IdKind::Message.lower_bound(at) <= id);
    }
}

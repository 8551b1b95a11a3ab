//! The fan-out rule: which endpoints receive a message.
//!
//! Scheduled deliveries go to every enabled endpoint whose event-type filter is empty or names
//! the message's type, and whose channel filter is empty or shares a channel with the message. A
//! message without channels does not reach an endpoint that filters on channels. Manual sends
//! (resend, recover) bypass these filters; that choice belongs to the caller.

use crate::model::Endpoint;

/// Does `endpoint` receive a message of `event_type` on `channels`?
pub fn endpoint_accepts(endpoint: &Endpoint, event_type: &str, channels: Option<&[String]>) -> bool {
    if endpoint.disabled {
        return false;
    }
    let type_ok = endpoint
        .event_types
        .as_ref()
        .is_none_or(|types| types.iter().any(|t| t == event_type));
    let channel_ok = match &endpoint.channels {
        None => true,
        Some(wanted) => channels.is_some_and(|have| have.iter().any(|c| wanted.contains(c))),
    };
    type_ok && channel_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn endpoint(types: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Endpoint {
            id: "ep_x".into(),
            app_id: "app_x".into(),
            uid: None,
            url: "http://127.0.0.1/".into(),
            description: String::new(),
            disabled: false,
            event_types: types.map(own),
            channels: channels.map(own),
            throttle_rate: None,
            metadata: Default::default(),
            secret: String::new(),
            headers: Default::default(),
            old_secrets: Vec::new(),
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            destination: None,
        }
    }

    fn chans(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn endpoint_without_filters_accepts_everything() {
        assert!(endpoint_accepts(&endpoint(None, None), "user.created", None));
        assert!(endpoint_accepts(&endpoint(None, None), "a", Some(&chans(&["x"]))));
    }

    #[test]
    fn event_type_filter_selects_listed_types_only() {
        let ep = endpoint(Some(&["content.published", "user.created"]), None);
        assert!(endpoint_accepts(&ep, "user.created", None));
        assert!(!endpoint_accepts(&ep, "user.updated", None));
    }

    #[test]
    fn channel_filter_needs_a_shared_channel() {
        let ep = endpoint(None, Some(&["eu", "us"]));
        assert!(endpoint_accepts(&ep, "t", Some(&chans(&["apac", "us"]))));
        assert!(!endpoint_accepts(&ep, "t", Some(&chans(&["apac"]))));
        assert!(
            !endpoint_accepts(&ep, "t", None),
            "a message without channels skips channel-filtered endpoints"
        );
    }

    #[test]
    fn both_filters_must_pass() {
        let ep = endpoint(Some(&["a"]), Some(&["eu"]));
        assert!(endpoint_accepts(&ep, "a", Some(&chans(&["eu"]))));
        assert!(!endpoint_accepts(&ep, "b", Some(&chans(&["eu"]))));
        assert!(!endpoint_accepts(&ep, "a", Some(&chans(&["us"]))));
    }

    #[test]
    fn disabled_endpoint_accepts_nothing() {
        let mut ep = endpoint(None, None);
        ep.disabled = true;
        assert!(!endpoint_accepts(&ep, "a", None));
    }
}

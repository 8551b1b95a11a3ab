//! URLs shown without the credentials they carry: in `Debug` output, the configuration's dump,
//! and the destination details the API returns. One parser and one rule for each kind of
//! showing, so no surface masks a URL its own way.

/// What a shown URL keeps of the credentials in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The user name stays (it says which account is used); the password becomes the mask.
    User,
    /// The user name becomes the mask and the password goes.
    Nothing,
}

/// `url` with its credentials masked as `keep` says; unchanged when it carries none, and `None`
/// when it is not a URL (the caller decides how to show that).
pub fn url(url: &str, mask: &str, keep: Keep) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    match keep {
        Keep::User if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(mask));
        }
        Keep::Nothing if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username(mask);
            let _ = parsed.set_password(None);
        }
        _ => return Some(url.to_string()),
    }
    Some(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_masked_and_the_user_kept_or_masked_as_asked() {
        let url_with = "amqp://hookd:hunter2@127.0.0.1:5672/%2f";
        assert_eq!(
            url(url_with, "***", Keep::User).as_deref(),
            Some("amqp://hookd:***@127.0.0.1:5672/%2f")
        );
        assert_eq!(
            url(url_with, "***", Keep::Nothing).as_deref(),
            Some("amqp://***@127.0.0.1:5672/%2f")
        );
        assert_eq!(
            url("https://user@127.0.0.1/hook", "***", Keep::Nothing).as_deref(),
            Some("https://***@127.0.0.1/hook")
        );
    }

    #[test]
    fn a_url_without_credentials_is_shown_as_written_and_a_non_url_is_refused() {
        assert_eq!(
            url("postgres://postgres@127.0.0.1/test", "***", Keep::User).as_deref(),
            Some("postgres://postgres@127.0.0.1/test")
        );
        for keep in [Keep::User, Keep::Nothing] {
            assert_eq!(
                url("https://127.0.0.1:9/hook?x=1", "***", keep).as_deref(),
                Some("https://127.0.0.1:9/hook?x=1")
            );
            assert_eq!(url("not a url", "***", keep), None);
        }
    }
}

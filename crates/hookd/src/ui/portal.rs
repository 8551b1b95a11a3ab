//! The consumer portal at `/portal`: the pages an application's owner needs, and nothing of any
//! other application.
//!
//! `app-portal-access` answers with a link `…/portal/open?code=hkpl_…`. The code is good for one
//! exchange: `GET /portal/open` shows a page whose form (sent at once by a one-line script, or
//! by a click without JavaScript) posts it back; the post deletes the code, opens a session with
//! the link's capabilities and sends the browser on to `/portal/apps/{app}` with a cookie, so
//! the code leaves the address bar and a link preview that only fetches the page spends
//! nothing.
//!
//! The portal shows the dashboard's own application pages under `/portal/apps/{app}/…`, limited
//! by [`Viewer`]: another application's pages answer 404, and each action checks its
//! capability. The cookie is `Path=/portal`, HttpOnly, and SameSite=Lax over http (the link is
//! opened from another site) or `SameSite=None; Secure; Partitioned` over https, so the portal
//! also works inside another site's `<iframe>` where `portal.frame_ancestors` allows it; every
//! form carries the session's CSRF token either way.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookd_store::SessionRecord;
use std::collections::HashMap;

use super::session::{self, cookie, csrf_for, Portal, Viewer};
use super::{render, unavailable, Fields};
use crate::auth::{hash_token, portal_link_hash, Capability, PORTAL_SESSIONS};
use crate::config::{is_color, is_font_family, is_logo_url, PortalConfig};
use crate::state::AppState;

/// The portal session cookie.
pub const COOKIE_NAME: &str = "hookd_portal";
/// The cookie keeping the look a portal link asked for.
pub const THEME_COOKIE: &str = "hookd_portal_theme";

/// How the portal looks: the configuration's choices, or those a link asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Theme {
    /// Accent colour, `#rrggbb`.
    pub primary: Option<String>,
    /// Dark colours whatever the browser prefers.
    pub dark: bool,
    /// An `https://` image shown instead of the name.
    pub logo: Option<String>,
    /// A font family name.
    pub font: Option<String>,
    /// Leave out "powered by hookd".
    pub hide_powered_by: bool,
}

impl Theme {
    /// The configured theme with what `asked` (Svix's query names: `primaryColor`, `darkMode`,
    /// `icon`, `fontFamily`, plus `hidePoweredBy`) overrides; values that are not valid are
    /// ignored.
    pub fn from(config: &PortalConfig, asked: &HashMap<String, String>) -> Theme {
        let pick = |name: &str, configured: &str, ok: fn(&str) -> bool| {
            asked
                .get(name)
                .map(String::as_str)
                .filter(|v| ok(v))
                .or(Some(configured).filter(|v| !v.is_empty()))
                .map(str::to_string)
        };
        let flag = |name: &str, configured: bool| match asked.get(name).map(String::as_str) {
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            _ => configured,
        };
        Theme {
            primary: pick("primaryColor", &config.primary_color, is_color),
            dark: flag("darkMode", config.dark_mode),
            logo: pick("icon", &config.logo_url, is_logo_url),
            font: pick("fontFamily", &config.font_family, is_font_family),
            hide_powered_by: flag("hidePoweredBy", config.hide_powered_by),
        }
    }

    /// The theme as query parameters (for the cookie and the stylesheet's URL).
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(c) = &self.primary {
            q.append_pair("primaryColor", c);
        }
        if self.dark {
            q.append_pair("darkMode", "true");
        }
        if let Some(l) = &self.logo {
            q.append_pair("icon", l);
        }
        if let Some(f) = &self.font {
            q.append_pair("fontFamily", f);
        }
        if self.hide_powered_by {
            q.append_pair("hidePoweredBy", "true");
        }
        q.finish()
    }

    /// The stylesheet that applies the theme over hookd's own.
    fn css(&self) -> String {
        let mut css = String::from("/* hookd portal theme */\n");
        if self.dark {
            css.push_str(
                ":root { --bg: #14171b; --fg: #e6e8eb; --muted: #a0a8b3; --card: #1d2126; --line: #333a42; --accent: #7aa2ff; --bad: #ff8a80; color-scheme: dark; }\n",
            );
        }
        if let Some(c) = &self.primary {
            css.push_str(&format!(":root {{ --accent: {c}; }}\n"));
        }
        if let Some(f) = &self.font {
            css.push_str(&format!(":root {{ font-family: \"{f}\", system-ui, sans-serif; }}\n"));
        }
        css
    }
}

/// The query a page's link or the theme cookie carries, as pairs.
fn pairs(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Whether the portal is served over https (its public URL says so, or the proxy in front).
fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.portal_base_url().starts_with("https://") || session::is_https(state, headers)
}

/// A portal `Set-Cookie` value: for `/portal` only; usable inside another site's frame over
/// https, sent on the link's own navigation over http.
fn portal_cookie(name: &str, value: &str, max_age: i64, https: bool) -> HeaderValue {
    let site = if https {
        "SameSite=None; Secure; Partitioned"
    } else {
        "SameSite=Lax"
    };
    session::http_only_cookie(name, value, "/portal", site, max_age.max(0) as u64, "")
}

/// The page a browser without a (live) portal session gets.
fn expired() -> Response {
    let page = Notice {
        title: "This portal link has expired",
        message: "Portal links work once and for a limited time. Ask the service that sent you here for a new link.",
    };
    render(StatusCode::UNAUTHORIZED, &page)
}

#[derive(Template)]
#[template(path = "portal_notice.html")]
struct Notice {
    title: &'static str,
    message: &'static str,
}

/// The portal session behind a request, as a [`Viewer`].
pub(super) async fn viewer(parts: &Parts, state: &AppState) -> Result<Viewer, Response> {
    let Some(secret) = cookie(&parts.headers, COOKIE_NAME).filter(|s| !s.is_empty()) else {
        return Err(expired());
    };
    let found = state
        .store
        .find_session(&hash_token(secret), state.clock.now())
        .await
        .map_err(|e| unavailable(&e))?;
    let Some(session) = found else { return Err(expired()) };
    let Some(app_id) = session.app_id.clone() else {
        return Err(expired());
    };
    let asked = pairs(cookie(&parts.headers, THEME_COOKIE).unwrap_or(""));
    let theme = Theme::from(&state.config.portal, &asked);
    Ok(Viewer {
        csrf: csrf_for(secret),
        env: session.env,
        portal: Some(Portal {
            app_id,
            grants: session
                .capabilities
                .iter()
                .filter_map(|c| Capability::parse(c))
                .collect(),
            theme,
        }),
        session,
    })
}

#[derive(Template)]
#[template(path = "portal_open.html")]
struct OpenPage {
    code: String,
    theme: String,
}

/// `GET /portal/open?code=…`: the page that exchanges a link's code (it sends itself).
pub async fn open_page(Query(query): Query<HashMap<String, String>>) -> Response {
    let code = query.get("code").cloned().unwrap_or_default();
    if !code.starts_with("hkpl_") || code.len() > 64 {
        return expired();
    }
    let mut asked = query;
    asked.remove("code");
    let theme = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(asked.iter())
        .finish();
    // The page's own `Referrer-Policy: same-origin` keeps the code from any other site; a
    // stricter `no-referrer` would make browsers send `Origin: null` with the form, which the
    // exchange refuses as a cross-site post.
    render(StatusCode::OK, &OpenPage { code, theme })
}

/// `POST /portal/open`: spends the code once and opens a session limited to its application.
pub async fn open(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !session::same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "this form must be sent from hookd's own page").into_response();
    }
    let fields = Fields::parse(&body);
    let code = fields.one("code");
    let now = state.clock.now();
    let link = match state.store.find_session(&portal_link_hash(&code), now).await {
        Ok(Some(link)) if link.app_id.is_some() => link,
        Ok(_) => return expired(),
        Err(e) => return unavailable(&e),
    };
    // Deleting the code is what spends it: of two tabs racing, one gets `true`.
    match state.store.delete_session(&link.id).await {
        Ok(true) => {}
        Ok(false) => return expired(),
        Err(e) => return unavailable(&e),
    }
    let app_id = link.app_id.clone().unwrap_or_default();
    let record = SessionRecord {
        id: String::new(),
        hash: String::new(),
        created_at: now,
        ..link
    };
    let max_age = (record.expires_at - now).num_seconds();
    let secret = match session::store_new(&state, record, PORTAL_SESSIONS).await {
        Ok(secret) => secret,
        Err(e) => return unavailable(&e),
    };
    let https = is_https(&state, &headers);
    let theme = Theme::from(&state.config.portal, &pairs(&fields.one("theme")));
    let mut response = Redirect::to(&format!("/portal/apps/{app_id}")).into_response();
    let cookies = response.headers_mut();
    cookies.append(SET_COOKIE, portal_cookie(COOKIE_NAME, &secret, max_age, https));
    cookies.append(
        SET_COOKIE,
        portal_cookie(THEME_COOKIE, &theme.to_query(), max_age, https),
    );
    response
}

/// `GET /portal/`: the session's application.
pub async fn home(viewer: Viewer) -> Response {
    match &viewer.portal {
        Some(p) => Redirect::to(&format!("/portal/apps/{}", p.app_id)).into_response(),
        None => expired(),
    }
}

/// `POST /portal/logout`: ends the portal session.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    super::Posted { op, .. }: super::Posted<Viewer>,
) -> Response {
    if let Err(e) = state.store.delete_session(&op.session.id).await {
        return unavailable(&e);
    }
    let https = is_https(&state, &headers);
    let mut response = render(
        StatusCode::OK,
        &Notice {
            title: "Signed out",
            message: "The portal session has ended. Open a new portal link to come back.",
        },
    );
    let cookies = response.headers_mut();
    cookies.append(SET_COOKIE, portal_cookie(COOKIE_NAME, "", 0, https));
    cookies.append(SET_COOKIE, portal_cookie(THEME_COOKIE, "", 0, https));
    response
}

/// `GET /portal/theme.css?…`: the theme the query names (values checked again here).
pub async fn theme_css(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let theme = Theme::from(&state.config.portal, &query);
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        theme.css(),
    )
        .into_response()
}

/// `GET /portal/open.js`: sends the open page's form, so opening a link takes no click.
pub async fn open_script() -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        "document.getElementById('open').submit();\n",
    )
        .into_response()
}

/// The portal's Content-Security-Policy: the dashboard's, plus its one script, logos from
/// https, and framing by `frame_ancestors` alone.
pub fn csp(config: &PortalConfig) -> String {
    let ancestors = if config.frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        config.frame_ancestors.join(" ")
    };
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data: https:; script-src 'self'; form-action 'self'; frame-ancestors {ancestors}; base-uri 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_overrides_the_configured_theme_with_valid_values_only() {
        let config = PortalConfig {
            primary_color: "#112233".into(),
            font_family: "Inter".into(),
            ..PortalConfig::default()
        };
        let asked = pairs("primaryColor=%23aabbcc&darkMode=true&icon=javascript:alert(1)&fontFamily=x%7D%20body%7B");
        let theme = Theme::from(&config, &asked);
        assert_eq!(theme.primary.as_deref(), Some("#aabbcc"));
        assert!(theme.dark);
        assert_eq!(theme.logo, None, "not an https URL");
        assert_eq!(theme.font.as_deref(), Some("Inter"), "an unsafe font name falls back");
        assert_eq!(Theme::from(&config, &pairs(&theme.to_query())), theme);
        let css = theme.css();
        assert!(css.contains("--accent: #aabbcc"));
        assert!(css.contains("\"Inter\""));
    }

    #[test]
    fn the_csp_lets_only_the_configured_sites_frame_the_portal() {
        let mut config = PortalConfig::default();
        assert!(csp(&config).contains("frame-ancestors 'none'"));
        config.frame_ancestors = vec!["https://app.example.com".into(), "'self'".into()];
        assert!(csp(&config).contains("frame-ancestors https://app.example.com 'self';"));
    }

    #[test]
    fn portal_cookies_work_in_frames_over_https_only() {
        let http = portal_cookie(COOKIE_NAME, "hkds_x", 60, false);
        assert_eq!(
            http.to_str().unwrap(),
            "hookd_portal=hkds_x; Path=/portal; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        let https = portal_cookie(COOKIE_NAME, "hkds_x", 60, true);
        assert!(https.to_str().unwrap().contains("SameSite=None; Secure; Partitioned"));
    }
}

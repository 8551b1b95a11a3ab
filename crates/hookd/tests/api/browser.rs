//! The dashboard and the portal in a real browser: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`; `.ci/run` and `scripts/test.sh`
//! install them), clicking and typing like a person, against hookd and a receiver on loopback.
//!
//! The same run takes the screenshots the docs show. With `HOOKD_UPDATE_SCREENSHOTS=1` they are
//! written to `docs/screenshots/` (commit them); otherwise to a temporary folder, so every run
//! still proves they can be taken.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::TestApp;

/// A headless Chromium session and the chromedriver serving it.
struct Browser {
    client: Client,
    driver: Child,
    shots: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver_path = std::env::var("HOOKD_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {driver_path} ({e}): install Debian's chromium and chromium-driver (scripts/test.sh does)")
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start listening");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let chromium = std::env::var("HOOKD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--no-proxy-server", "--hide-scrollbars"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let (shots, temp) = if std::env::var("HOOKD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
            (
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots"),
                None,
            )
        } else {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_path_buf(), Some(temp))
        };
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            driver,
            shots,
            _temp: temp,
        }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn html(&self) -> String {
        self.client.source().await.unwrap()
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks what leads to another page (a link, a form's button) and waits until the page
    /// it was on is gone.
    async fn follow(&self, css: &str) {
        let page = self.client.find(Locator::Css("html")).await.unwrap();
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while page.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "{css} led nowhere");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn type_in(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Reloads until the page holds `text` (a delivery finishing, a task ending).
    async fn reload_until(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let html = self.html().await;
            if html.contains(text) {
                return html;
            }
            assert!(Instant::now() < deadline, "never showed {text:?}: {html}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.client.refresh().await.unwrap();
        }
    }

    /// Saves the page as `name.png` and checks it is a PNG, and that the docs show the
    /// committed copy (so a new screenshot cannot be forgotten).
    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{name}: a real picture"
        );
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        assert!(
            docs.join(format!("screenshots/{name}.png")).is_file(),
            "docs/screenshots/{name}.png is committed (run with HOOKD_UPDATE_SCREENSHOTS=1)"
        );
        let guide = std::fs::read_to_string(docs.join("dashboard.md")).unwrap();
        assert!(
            guide.contains(&format!("screenshots/{name}.png")),
            "docs/dashboard.md shows {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_and_a_customer_use_hookd_in_a_real_browser() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.retry_schedule = vec![];
        c.delivery.disable_after_secs = 60;
    })
    .await;
    let schema = json!({"1": {"type": "object", "examples": [{"invoice": "in_1", "amount": 1200}]}});
    for (name, group) in [
        ("invoice.paid", "billing"),
        ("invoice.refunded", "billing"),
        ("user.created", "accounts"),
    ] {
        let body = json!({"name": name, "description": format!("When {name}"), "groupName": group, "schemas": schema});
        app.post("/api/v1/event-type", body).await;
    }
    let b = Browser::start().await;
    let base = &app.base;

    // Sign in.
    b.goto(&format!("{base}/")).await;
    assert_eq!(
        b.path().await,
        "/login",
        "a browser without a session is sent to sign in"
    );
    b.shot("sign-in").await;
    // With the keyboard alone: the token field takes the first Tab, Enter sends the form.
    let page = b.client.find(Locator::Css("html")).await.unwrap();
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = b.client.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("token"),
        "Tab reaches the token field"
    );
    focused.send_keys(&format!("{}\u{E007}", app.token)).await.unwrap();
    while page.tag_name().await.is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.path().await, "/");
    assert!(b.html().await.contains("<h1>Overview</h1>"));

    // Create an application, then an endpoint pointing at the local receiver.
    b.goto(&format!("{base}/apps")).await;
    b.type_in("#name", "Acme Corp").await;
    b.type_in("#uid", "acme").await;
    b.follow("form[action='/apps'][method=post] button[type=submit]").await;
    b.follow("table a").await;
    let app_page = b.path().await;
    assert!(app_page.starts_with("/apps/app_"), "{app_page}");
    b.follow("a.button").await;
    b.type_in("#url", &app.receiver.url("/ok")).await;
    b.click("input[value='invoice.paid']").await;
    b.shot("endpoint-form").await;
    b.follow("form.wide button[type=submit]").await;
    let endpoint_page = b.path().await;
    assert!(endpoint_page.contains("/endpoints/ep_"), "{endpoint_page}");

    // Send a test event and see it delivered.
    b.click("#test-type option[value='invoice.paid']").await;
    b.follow("form[action$='/test'] button").await;
    let message_page = b.path().await;
    assert!(message_page.contains("/messages/msg_"), "{message_page}");
    let html = b.reload_until("HTTP 200").await;
    assert!(html.contains("in_1"), "the catalog's example was sent");
    assert_eq!(app.receiver.requests().len(), 1);
    b.shot("message").await;

    // An endpoint that fails: its failure shows in the dead-letter view and is retried.
    let failing = app.create_endpoint("acme", "/status/500", json!({})).await;
    let failing_id = failing["id"].as_str().unwrap().to_string();
    let sent = app
        .send_message("acme", json!({"eventType": "user.created", "payload": {"id": 7}}))
        .await;
    let failed_msg = sent["id"].as_str().unwrap().to_string();
    app.wait_delivery_status("acme", &failed_msg, "fail").await;
    let failing_page = format!("{app_page}/endpoints/{failing_id}");
    b.goto(&format!("{base}{failing_page}/failed")).await;
    assert!(b.html().await.contains(&failed_msg));
    b.shot("failed-deliveries").await;
    b.click(&format!("input[value='{failed_msg}']")).await;
    b.follow("form[action$='/failed/retry'] button[type=submit]:not([formaction])")
        .await;
    assert!(b.path().await.ends_with("retried=1"), "{}", b.path().await);
    let to_failing = |r: &crate::helpers::Recorded| r.path == "/status/500";
    assert_eq!(app.receiver.wait_for(2, to_failing).await.len(), 2, "retried once more");

    // Auto-disable after a minute of failures, then one action re-enables and replays.
    app.advance(Duration::from_secs(61));
    let later = app
        .send_message("acme", json!({"eventType": "user.created", "payload": {"id": 8}}))
        .await;
    app.wait_delivery_status("acme", later["id"].as_str().unwrap(), "fail")
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/api/v1/app/acme/endpoint/{failing_id}")).await.1["disabled"] != true {
        assert!(Instant::now() < deadline, "auto-disabled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.goto(&format!("{base}{failing_page}")).await;
    assert!(b.html().await.contains("state-disabled"));
    b.shot("endpoint-disabled").await;
    b.follow("form[action$='/enable-replay'] button").await;
    let html = b.html().await;
    assert!(
        html.contains("Enabled.") && html.matches("/tasks/qtask_").count() == 2,
        "{html}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/app/acme/endpoint/{failing_id}")).await.1["disabled"],
        false
    );

    b.goto(&format!("{base}/?range=1h")).await;
    assert_eq!(b.html().await.matches("<svg class=\"chart\"").count(), 4);
    b.shot("overview").await;

    // A portal link, read-only: its application only, no changes offered or accepted.
    let other = app.create_app("globex").await;
    let (_, access) = app
        .post("/api/v1/auth/app-portal-access/acme", json!({"readOnly": true}))
        .await;
    b.goto(access["url"].as_str().unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.path().await.starts_with("/portal/apps/") {
        assert!(
            Instant::now() < deadline,
            "the link opened the portal by itself: {} {}",
            b.path().await,
            b.html().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let html = b.html().await;
    assert!(html.contains(&failing_id) && !html.contains("globex") && !html.contains("New endpoint"));
    b.shot("portal").await;
    b.goto(&format!("{base}/portal{failing_page}")).await;
    let html = b.html().await;
    assert!(
        html.contains("Reveal")
            && !html.contains("Disable")
            && !html.contains("Rotate")
            && !html.contains("Send a test event")
    );
    b.goto(&format!("{base}/portal/apps/{}", other["id"].as_str().unwrap()))
        .await;
    assert!(b.html().await.contains("no such application"));

    // Dark mode by link, and a phone-sized screen: nothing wider than the screen.
    let (_, access) = app.post("/api/v1/auth/app-portal-access/acme", json!({})).await;
    b.goto(&format!(
        "{}&darkMode=true&primaryColor=%23e4572e",
        access["url"].as_str().unwrap()
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.path().await.starts_with("/portal/apps/") {
        assert!(Instant::now() < deadline, "the themed link opened the portal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.goto(&format!("{base}/portal{message_page}")).await;
    let background = b
        .client
        .execute("return getComputedStyle(document.body).backgroundColor", vec![])
        .await
        .unwrap();
    assert_eq!(background, json!("rgb(20, 23, 27)"), "dark colours");
    b.client.set_window_size(390, 844).await.unwrap();
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    let wide = b
        .client
        .execute(
            "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className).slice(0, 8).join(' ')",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page fits a phone: {overflow} px too wide: {wide}"
    );
    b.shot("portal-phone-dark").await;
    b.client.set_window_size(1280, 1000).await.unwrap();

    // Sign out of the dashboard.
    b.goto(&format!("{base}/")).await;
    b.follow("form[action='/logout'] button").await;
    assert_eq!(b.path().await, "/login");
    b.goto(&format!("{base}/apps")).await;
    assert_eq!(b.path().await, "/login", "the session has ended");
    b.client.clone().close().await.unwrap();
}

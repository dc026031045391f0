//! A small W3C WebDriver client (the commands the page tests use) over `reqwest`, and
//! the `chromedriver` process that drives Debian's headless Chromium.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running `chromedriver` on a loopback port, killed when dropped.
pub(crate) struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Driver {
    /// Starts `chromedriver`; `None` (after a loud SKIP line) when Chromium or
    /// ChromeDriver is not installed, unless `TESSERA_REQUIRE_SERVICES=1`, which fails.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        if !(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()) {
            assert!(
                std::env::var("TESSERA_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{test}: {CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)"
            );
            eprintln!("!!! SKIPPED {test}: chromium and chromium-driver are not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let driver = Self { child, url, http };
        let ready = async {
            loop {
                if let Ok(r) = driver
                    .http
                    .get(format!("{}/status", driver.url))
                    .send()
                    .await
                {
                    if r.status().is_success() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("chromedriver answers within 20 s");
        Some(driver)
    }

    /// A new browser with a profile of its own (cookies, storage).
    pub(crate) async fn browser(&self) -> Browser {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-extensions",
                            "--window-size=1100,900",
                        ]
                    }
                }
            }
        });
        let answer: Value = self
            .http
            .post(format!("{}/session", self.url))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver reachable")
            .json()
            .await
            .expect("a JSON answer");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_owned();
        let browser = Browser {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.url),
        };
        browser
            .command(
                reqwest::Method::POST,
                "/timeouts",
                Some(json!({ "pageLoad": 20_000, "script": 20_000, "implicit": 0 })),
            )
            .await;
        browser
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser (a WebDriver session).
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub(crate) struct Element(String);

impl Browser {
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let request = self.http.request(method, format!("{}{path}", self.base));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().await.expect("chromedriver reachable");
        let ok = response.status().is_success();
        let answer: Value = response.json().await.expect("a JSON answer");
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if ok { Ok(value) } else { Err(value) }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_command(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {path}: {e}"),
        }
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub(crate) async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (at most 20 s) until the page's URL starts with `prefix` and it has loaded.
    pub(crate) async fn wait_for_url(&self, prefix: &str) -> String {
        let arrived = async {
            loop {
                let url = self.url().await;
                let complete = self
                    .script("return document.readyState === 'complete';", vec![])
                    .await;
                if url.starts_with(prefix) && complete == Value::Bool(true) {
                    return url;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        };
        if let Ok(url) = tokio::time::timeout(Duration::from_secs(20), arrived).await {
            return url;
        }
        panic!("still on {} after 20 s, not {prefix}", self.url().await)
    }

    pub(crate) async fn refresh(&self) {
        self.command(reqwest::Method::POST, "/refresh", Some(json!({})))
            .await;
    }

    /// The element `css` selects, if any.
    pub(crate) async fn try_find(&self, css: &str) -> Option<Element> {
        let found = self
            .try_command(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .ok()?;
        found[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    pub(crate) async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(e) => e,
            None => panic!(
                "no element {css} on {}:\n{}",
                self.url().await,
                self.text("body").await
            ),
        }
    }

    pub(crate) async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) async fn click(&self, element: &Element) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await;
    }

    /// Clicks `element` and waits (at most 20 s) until a new page has loaded: the
    /// click of a form's button returns before its navigation ends.
    pub(crate) async fn click_and_wait(&self, element: &Element) {
        self.script("window.__tessera_old_page = true;", vec![])
            .await;
        self.click(element).await;
        let loaded = async {
            loop {
                let state = self
                    .try_command(
                        reqwest::Method::POST,
                        "/execute/sync",
                        Some(json!({
                            "script": "return window.__tessera_old_page === undefined && document.readyState === 'complete';",
                            "args": []
                        })),
                    )
                    .await;
                if state == Ok(Value::Bool(true)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), loaded)
            .await
            .expect("the next page loads within 20 s");
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/clear", element.0),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub(crate) async fn element_text(&self, element: &Element) -> String {
        self.command(
            reqwest::Method::GET,
            &format!("/element/{}/text", element.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The visible text of the element `css` selects.
    pub(crate) async fn text(&self, css: &str) -> String {
        match self.try_find(css).await {
            Some(e) => self.element_text(&e).await,
            None => String::new(),
        }
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub(crate) async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Runs `script`, which calls its last argument with the result.
    pub(crate) async fn async_script(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// A PNG of the window, written to `path`.
    pub(crate) async fn screenshot(&self, path: &Path) {
        let data = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Sets the window size (for screenshots of whole pages).
    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    pub(crate) async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

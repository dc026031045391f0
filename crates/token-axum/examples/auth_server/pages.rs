//! The browser pages: sign-in, the account page (sessions and API keys), password
//! reset. Server-rendered HTML, one stylesheet, no script, no third-party resource.
//!
//! A signed-in browser holds one credential: the server-side session id in the
//! `__Host-session` cookie (`Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`; `session`
//! without `Secure` under `--insecure-cookies`). Scripts cannot read it, and no token
//! is ever handed to the page. Every state-changing form is checked three ways
//! ([`token_axum::csrf`]): the cookie is `SameSite`, the request's `Origin` /
//! `Sec-Fetch-Site` must be this service's origin (`--public-origin`, or the `Host`
//! the request named), and the form carries the session's CSRF token. A refused form
//! answers `403` and changes nothing.
//!
//! A new API key is shown once: the form's answer redirects to `/account` with the key
//! in a cookie that only this service can read — encrypted under the service's
//! short-lived local key (the one payment tokens use) and bound to the user — which the
//! next `GET /account` consumes (single use, on every instance) and deletes. A reload
//! finds nothing. Every page answers `Cache-Control: no-store` under a
//! `Content-Security-Policy` without `unsafe-inline` that also forbids framing.

use super::*;
use axum::body::Bytes;
use axum::extract::Request;
use token_axum::csrf::{CrossSite, CsrfToken, SameOrigin};

/// The stylesheet, served at [`STYLE_PATH`].
const STYLE: &str = include_str!("pages/style.css");
pub(crate) const STYLE_PATH: &str = "/static/style.css";
/// Every page's policy: resources from this origin only, no script at all, forms post
/// here only, never framed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
/// How long the one-time display of a new key waits for its page.
const NEW_KEY_DISPLAY: Duration = Duration::from_secs(120);
/// How long a rolled key's previous value keeps working.
const ROLL_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest `User-Agent` kept with a session (to tell sessions apart on the page).
const MAX_AGENT: usize = 160;

/// The pages' cookies and origin rule.
pub(crate) struct Pages {
    session: SessionCookie,
    new_key: SessionCookie,
    /// `--public-origin`; without it, the origin the request's `Host` names.
    origin: Option<SameOrigin>,
    scheme: &'static str,
    /// `--cors-origin`: pages of these origins may call the JSON API with cookies.
    cors_origins: Vec<HeaderValue>,
}

impl Pages {
    pub(crate) fn new(
        secure: bool,
        public_origin: Option<&str>,
        cors_origins: Vec<HeaderValue>,
    ) -> anyhow::Result<Self> {
        let (session, new_key) = if secure {
            (
                SessionCookie::with_name("session")?,
                SessionCookie::with_name("new-key")?,
            )
        } else {
            (
                SessionCookie::dangerous_insecure("session")?,
                SessionCookie::dangerous_insecure("new-key")?,
            )
        };
        let origin = public_origin
            .map(|o| SameOrigin::new([o.trim_end_matches('/')]))
            .transpose()
            .context("--public-origin")?;
        Ok(Self {
            // Lax: a link from elsewhere (the reset mail) opens the account page signed
            // in; a cross-site form post carries no session.
            session: session.same_site(SameSite::Lax),
            new_key: new_key.same_site(SameSite::Strict),
            origin,
            scheme: if secure { "https" } else { "http" },
            cors_origins,
        })
    }

    /// The origin rule for this request.
    fn same_origin(&self, headers: &HeaderMap) -> Result<(), CrossSite> {
        if let Some(origin) = &self.origin {
            return origin.check(headers);
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or(CrossSite::NoOrigin)?;
        SameOrigin::new([format!("{}://{}", self.scheme, host.to_ascii_lowercase())])
            .map_err(|_| CrossSite::ForeignOrigin)?
            .check(headers)
    }

    /// The rule for a JSON API call that a cookie authenticates (`POST /logout` with the
    /// refresh cookie): a browser's call must come from this service's origin or one
    /// that `--cors-origin` allows; a call naming no origin at all is not a browser's
    /// (browsers send `Origin` on every `POST`) and passes.
    pub(crate) fn api_cookie_origin(&self, headers: &HeaderMap) -> Result<(), CrossSite> {
        let origin = headers.get(header::ORIGIN);
        if origin.is_some_and(|o| self.cors_origins.contains(o)) {
            return Ok(());
        }
        if origin.is_none() && !headers.contains_key("sec-fetch-site") {
            return Ok(());
        }
        self.same_origin(headers)
    }
}

/// Whether the body is a form (`application/x-www-form-urlencoded`).
pub(crate) use token_axum::extract::is_form_urlencoded as is_form;

/// HTML-escapes text for an element or a quoted attribute.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A short name for a `User-Agent`: "Firefox on Windows", "Chrome on Android".
fn browser_name(agent: &str) -> String {
    const BROWSERS: [(&str, &str); 7] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ];
    const SYSTEMS: [(&str, &str); 6] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS
        .iter()
        .find(|(mark, _)| agent.contains(mark))
        .map(|(_, name)| *name);
    let system = SYSTEMS
        .iter()
        .find(|(mark, _)| agent.contains(mark))
        .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("a browser on {s}"),
        (None, None) => agent.chars().take(40).collect(),
    }
}

/// A time as `2026-12-02 21:40 UTC`.
fn when(t: token_core::Timestamp) -> String {
    let text = t.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

/// A whole page: `title` and `body` (already escaped HTML).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · tessera</title>\n<link rel=\"stylesheet\" href=\"{STYLE_PATH}\">\n\
         </head>\n<body>\n<header><p class=\"brand\">tessera</p></header>\n<main>\n{body}\n</main>\n\
         </body>\n</html>\n",
        title = esc(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null`
    // with the pages' own forms, which the origin check must refuse.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// `303 See Other` to `to`, with `cookies` set.
fn see_other(to: &'static str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static(to));
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    secure_headers(headers);
    response
}

fn set_cookie(
    cookie: &SessionCookie,
    value: &SecretString,
    max_age: Option<Duration>,
) -> Option<HeaderValue> {
    let mut header =
        HeaderValue::from_str(cookie.set_cookie(value, max_age).expose_secret()).ok()?;
    header.set_sensitive(true);
    Some(header)
}

fn clear_cookie(cookie: &SessionCookie) -> Option<HeaderValue> {
    HeaderValue::from_str(&cookie.clear_cookie()).ok()
}

/// A message paragraph (`role="alert"` for errors).
fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "error" {
        " role=\"alert\""
    } else {
        ""
    };
    format!("<p class=\"notice {kind}\"{role}>{}</p>", esc(text))
}

/// The answer to a refused cross-site form: nothing changed.
fn refused(why: CrossSite) -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Request refused",
        &format!(
            "<h1>Request refused</h1>\n{}\n<p>Nothing was changed. <a href=\"/account\">Back to your account</a></p>",
            notice(
                "error",
                &format!("This form did not come from this site's own pages: {why}.")
            )
        ),
    )
}

/// The step-up answer of the context check: this browser's context is not the one it
/// signed in with; signing in again records the new one.
fn sign_in_again() -> Response {
    page(
        StatusCode::UNAUTHORIZED,
        "Sign in again",
        &format!(
            "<h1>Sign in again</h1>\n{}\n<p><a href=\"/login?again\">Sign in again</a> to continue. Nothing was changed.</p>",
            notice(
                "error",
                "Your browser or network changed since you signed in: this action needs you to sign in again."
            )
        ),
    )
}

/// An error page for a failure that is not the user's (a database down, a limit).
fn failure(error: ApiError) -> Response {
    let response = error.into_response();
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let text = match status {
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts. Wait a little, then try again.",
        StatusCode::SERVICE_UNAVAILABLE => "The service is busy. Try again in a moment.",
        s if s.is_client_error() => "That request could not be done.",
        _ => "Something went wrong on our side. Try again later.",
    };
    let mut page = page(
        status,
        "Not done",
        &format!(
            "<h1>Not done</h1>\n{}\n<p><a href=\"/account\">Back to your account</a></p>",
            notice("error", text)
        ),
    );
    if let Some(after) = retry_after {
        page.headers_mut().insert(header::RETRY_AFTER, after);
    }
    page
}

/// A form's fields in order, repeats kept (`scope=a&scope=b`).
struct Fields(Vec<(String, String)>);

impl Fields {
    /// The body's fields (at most the service's body limit).
    async fn read(request: Request) -> Result<Self, Response> {
        if !is_form(request.headers()) {
            return Err(failure(ApiError::UnsupportedMediaType));
        }
        let bytes = Bytes::from_request(request, &())
            .await
            .map_err(|_| failure(ApiError::PayloadTooLarge))?;
        Ok(Self(form_urlencoded::parse(&bytes).into_owned().collect()))
    }

    /// The first value of `name`.
    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or an empty one.
    fn text(&self, name: &str) -> String {
        self.one(name).unwrap_or_default().to_owned()
    }

    /// The first value of `name`, as a secret.
    fn secret(&self, name: &str) -> SecretString {
        SecretString::from(self.text(name))
    }

    /// Every value of `name`.
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The signed-in browser: its session, its user, the session's CSRF token.
struct Signed {
    session: token_opaque::Session,
    user: Arc<User>,
    csrf: CsrfToken,
}

impl Signed {
    /// The session the cookie names, if live and its user still exists.
    async fn from(app: &App, headers: &HeaderMap) -> Option<Self> {
        let raw = super::cookie::value_of(&app.pages.session, headers)?;
        let session = app.service.load_session(raw).await.ok()?;
        let user = app.users_by_id.get(&session.user_id).cloned()?;
        let csrf = session
            .data
            .get("csrf")
            .and_then(serde_json::Value::as_str)
            .map(CsrfToken::from_stored)?;
        Some(Self {
            session,
            user,
            csrf,
        })
    }

    fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            esc(self.csrf.as_str())
        )
    }
}

/// A state-changing form of a signed-in browser: the origin rule, then the session,
/// then the form's CSRF token. `Err` is the answer to give (refused, or to sign-in).
async fn signed_form(app: &App, request: Request) -> Result<(Signed, Fields), Response> {
    checked_form(app, request, false).await
}

/// [`signed_form`] for a sensitive action (API-key creation): with `--context-check`,
/// the browser's context (User-Agent and network) must be the one recorded at sign-in,
/// or the answer asks to sign in again — never a silent pass.
async fn sensitive_form(app: &App, request: Request) -> Result<(Signed, Fields), Response> {
    checked_form(app, request, true).await
}

async fn checked_form(
    app: &App,
    request: Request,
    sensitive: bool,
) -> Result<(Signed, Fields), Response> {
    app.pages.same_origin(request.headers()).map_err(refused)?;
    let Some(signed) = Signed::from(app, request.headers()).await else {
        return Err(see_other("/login", []));
    };
    let request = match (&app.context, sensitive) {
        (Some(check), true) => {
            let (parts, body) = request.into_parts();
            let recorded = signed
                .session
                .data
                .get(CONTEXT_KEY)
                .and_then(serde_json::Value::as_str);
            match check.check(&parts, recorded) {
                Ok(()) => Request::from_parts(parts, body),
                Err(token_axum::Error::ReauthenticationRequired) => return Err(sign_in_again()),
                Err(e) => return Err(failure(e.into())),
            }
        }
        _ => request,
    };
    let body = Fields::read(request).await?;
    signed.csrf.check(body.one("csrf")).map_err(refused)?;
    Ok((signed, body))
}

// ---------------------------------------------------------------- sign-in

fn login_page(status: StatusCode, message: Option<&str>, username: &str) -> Response {
    let message = message.map(|m| notice("error", m)).unwrap_or_default();
    page(
        status,
        "Sign in",
        &format!(
            "<h1>Sign in</h1>\n{message}\n\
             <form method=\"post\" action=\"/login\" class=\"card\">\n\
             <label for=\"username\">User name</label>\n\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{}\">\n\
             <label for=\"password\">Password</label>\n\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
             <button type=\"submit\">Sign in</button>\n</form>\n\
             <p><a href=\"/reset\">Forgot your password?</a></p>",
            esc(username)
        ),
    )
}

/// `GET /login`.
pub(crate) async fn login_form(
    State(AppState(app)): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    // `?again`: the step-up of the context check signs in again over a live session.
    if uri.query() != Some("again") && Signed::from(&app, &headers).await.is_some() {
        return see_other("/account", []);
    }
    login_page(StatusCode::OK, None, "")
}

/// `POST /login` with a form: a new session and `303` to `/account`, or the form again
/// with one message for every wrong name or password.
pub(crate) async fn login_submit(
    State(AppState(app)): State<AppState>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    request: Request,
) -> Response {
    if let Err(why) = app.pages.same_origin(request.headers()) {
        return refused(why);
    }
    let (request, client) = match Client::of(&app, request) {
        Ok(ok) => ok,
        Err(e) => return failure(e),
    };
    let previous =
        super::cookie::value_of(&app.pages.session, request.headers()).map(str::to_owned);
    let (username, password) = match Fields::read(request).await {
        Ok(f) => (f.text("username"), f.secret("password")),
        Err(response) => return response,
    };
    let user = match authenticate(&app, peer, &username, password).await {
        Ok(user) => user,
        Err(ApiError::InvalidCredentials) => {
            return login_page(
                StatusCode::OK,
                Some("That user name and password do not match an account."),
                &username,
            );
        }
        Err(e) => {
            let response = e.into_response();
            let status = response.status();
            let message = if status == StatusCode::TOO_MANY_REQUESTS {
                "Too many attempts. Wait a little, then try again."
            } else {
                "The service is busy. Try again in a moment."
            };
            let mut page = login_page(status, Some(message), &username);
            if let Some(after) = response.headers().get(header::RETRY_AFTER) {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, after.clone());
            }
            return page;
        }
    };
    // A session id the browser had before is never kept (no fixation): it ends.
    if let Some(previous) = previous {
        if let Ok(sessions) = app
            .service
            .opaque()
            .map(token_opaque::OpaqueTokens::sessions)
        {
            let _ = sessions.end(&previous).await;
        }
    }
    match new_session(&app, &user, &client).await {
        Ok(cookie) => see_other("/account", cookie),
        Err(e) => failure(e),
    }
}

/// The session data's member holding the client context (with `--context-check`).
const CONTEXT_KEY: &str = "ctx";

/// What a session keeps of the browser that signs in: its `User-Agent` (to tell
/// sessions apart on the page) and, with `--context-check`, its context's keyed hash.
struct Client {
    agent: String,
    context: Option<String>,
}

impl Client {
    fn of(app: &App, request: Request) -> Result<(Request, Self), ApiError> {
        let (parts, body) = request.into_parts();
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(MAX_AGENT)
            .collect();
        let context = app
            .context
            .as_ref()
            .map(|check| check.context_of(&parts))
            .transpose()?;
        Ok((Request::from_parts(parts, body), Self { agent, context }))
    }
}

/// A new browser session for `user`, and its cookie.
async fn new_session(
    app: &App,
    user: &User,
    client: &Client,
) -> Result<Option<HeaderValue>, ApiError> {
    let csrf = CsrfToken::generate()
        .map_err(|e| ApiError::Auth(token_axum::Error::Internal(e.to_string())))?;
    let mut data = json!({ "csrf": csrf.as_str(), "agent": client.agent });
    if let (Some(ctx), serde_json::Value::Object(map)) = (&client.context, &mut data) {
        map.insert(CONTEXT_KEY.into(), ctx.clone().into());
    }
    let created = app.service.create_session(&user.id, data).await?;
    let lifetime = app.service.opaque()?.config().sessions.absolute_lifetime;
    Ok(set_cookie(
        &app.pages.session,
        &created.session_id,
        Some(lifetime),
    ))
}

/// `POST /logout` with a form: ends this browser's session.
pub(crate) async fn logout_submit(app: Arc<App>, request: Request) -> Response {
    let (signed, _) = match signed_form(&app, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let handle = signed.session.handle.clone();
    sign_out(&app, &signed, &handle).await
}

/// Ends the session `handle` of the signed-in user: `303` to the sign-in page when it
/// is this browser's own (its cookie deleted), else back to the account page.
async fn sign_out(app: &App, signed: &Signed, handle: &str) -> Response {
    let ended = match app.service.opaque() {
        Ok(opaque) => opaque
            .sessions()
            .revoke(&signed.user.id, handle)
            .await
            .map_err(token_axum::Error::from),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = ended {
        return failure(e.into());
    }
    if handle == signed.session.handle {
        see_other("/login", clear_cookie(&app.pages.session))
    } else {
        see_other("/account", [])
    }
}

// ---------------------------------------------------------------- the account page

/// The one-time display of a new key, as the cookie carries it (encrypted).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyNotice {
    new_api_key: String,
    /// The session it was made in (its handle): shown there only.
    session: String,
}

/// `GET /account`.
pub(crate) async fn account(State(AppState(app)): State<AppState>, headers: HeaderMap) -> Response {
    let Some(signed) = Signed::from(&app, &headers).await else {
        return see_other("/login", []);
    };
    // The new key, if one is waiting: consumed (single use) and its cookie deleted.
    let mut new_key = None;
    let flash = super::cookie::value_of(&app.pages.new_key, &headers);
    if let Some(sealed) = flash {
        if let Ok(notice) = app
            .service
            .consume_payment::<NewKeyNotice>(sealed, &signed.user.id)
            .await
        {
            if notice.session == signed.session.handle {
                new_key = Some(SecretString::from(notice.new_api_key));
            }
        }
    }
    let body = match account_body(&app, &signed, new_key.as_ref()).await {
        Ok(body) => body,
        Err(e) => return failure(e),
    };
    let mut response = page(StatusCode::OK, "Your account", &body);
    if flash.is_some() {
        if let Some(clear) = clear_cookie(&app.pages.new_key) {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
    }
    response
}

async fn account_body(
    app: &App,
    signed: &Signed,
    new_key: Option<&SecretString>,
) -> Result<String, ApiError> {
    let opaque = app.service.opaque()?;
    let sessions = opaque
        .sessions()
        .list(&signed.user.id)
        .await
        .map_err(token_axum::Error::from)?;
    let now = token_core::Clock::now(&token_core::SystemClock);
    let keys: Vec<_> = opaque
        .api_keys()
        .list(&signed.user.id)
        .await
        .map_err(token_axum::Error::from)?
        .into_iter()
        .filter(|k| k.is_active(now))
        .collect();
    let csrf = signed.csrf_field();
    let mut html = String::new();
    let _ = write!(
        html,
        "<h1>Your account</h1>\n<p>Signed in as <strong id=\"username\">{}</strong>.</p>\n\
         <form method=\"post\" action=\"/logout\">{csrf}<button type=\"submit\" id=\"sign-out\" class=\"secondary\">Sign out</button></form>\n",
        esc(&signed.user.name)
    );
    if let Some(key) = new_key {
        let _ = write!(
            html,
            "<section class=\"card new-key\" aria-labelledby=\"new-key-title\">\n\
             <h2 id=\"new-key-title\">Your new API key</h2>\n\
             <p>Copy it now: it is shown this once and never again.</p>\n\
             <p><code id=\"new-api-key\">{}</code></p>\n</section>\n",
            esc(key.expose_secret())
        );
    }

    sessions_section(&mut html, signed, &sessions, &csrf);
    keys_section(&mut html, &keys, &csrf);
    Ok(html)
}

/// The signed-in browsers, "sign out" for each and "sign out everywhere else".
fn sessions_section(
    html: &mut String,
    signed: &Signed,
    sessions: &[token_opaque::Session],
    csrf: &str,
) {
    let _ = write!(
        *html,
        "<section aria-labelledby=\"sessions-title\">\n<h2 id=\"sessions-title\">Signed-in browsers</h2>\n\
         <table id=\"sessions\">\n<thead><tr><th scope=\"col\">Browser</th><th scope=\"col\">Signed in</th>\
         <th scope=\"col\">Last seen</th><th scope=\"col\"><span class=\"visually-hidden\">Action</span></th></tr></thead>\n<tbody>\n"
    );
    for session in sessions {
        let current = session.handle == signed.session.handle;
        let agent = session
            .data
            .get("agent")
            .and_then(serde_json::Value::as_str)
            .filter(|a| !a.is_empty())
            .unwrap_or("unknown browser");
        let mark = if current {
            " <strong class=\"current\">(this browser)</strong>"
        } else {
            ""
        };
        let _ = writeln!(
            *html,
            "<tr class=\"session{}\"><td>{}{mark}</td><td class=\"time\">{}</td><td class=\"time\">{}</td><td>\
             <form method=\"post\" action=\"/account/sessions/{}/end\">{csrf}\
             <button type=\"submit\" class=\"secondary\">Sign out</button></form></td></tr>",
            if current { " current-session" } else { "" },
            esc(&browser_name(agent)),
            when(session.created_at),
            when(session.last_seen_at),
            esc(&session.handle),
        );
    }
    let _ = write!(
        *html,
        "</tbody>\n</table>\n<form method=\"post\" action=\"/account/sign-out-others\">{csrf}\
         <button type=\"submit\" id=\"sign-out-others\">Sign out everywhere else</button></form>\n</section>\n"
    );
}

/// The user's live API keys, roll and revoke for each, and the form making one.
fn keys_section(html: &mut String, keys: &[token_opaque::ApiKeyInfo], csrf: &str) {
    let _ = write!(
        *html,
        "<section aria-labelledby=\"keys-title\">\n<h2 id=\"keys-title\">API keys</h2>\n"
    );
    if keys.is_empty() {
        html.push_str("<p id=\"no-api-keys\">You have no API keys.</p>\n");
    } else {
        html.push_str(
            "<table id=\"api-keys\">\n<thead><tr><th scope=\"col\">Prefix</th><th scope=\"col\">Name</th>\
             <th scope=\"col\">Scopes</th><th scope=\"col\">Last used</th>\
             <th scope=\"col\"><span class=\"visually-hidden\">Actions</span></th></tr></thead>\n<tbody>\n",
        );
        for key in keys {
            let prefix = if key.environment == Environment::Live {
                "sk_live_"
            } else {
                "sk_test_"
            };
            let scopes = if key.scopes.is_empty() {
                "none".to_owned()
            } else {
                key.scopes.join(" ")
            };
            let used = key.last_used_at.map_or_else(|| "never".to_owned(), when);
            let id = esc(&key.id);
            let name = esc(&key.name);
            // A rolled key works until its overlap ends; it is not rolled again.
            let (note, roll) = match (&key.replaced_by, key.expires_at) {
                (Some(_), Some(until)) => (
                    format!(
                        " <span class=\"rolled\">(rolled; works until {})</span>",
                        when(until)
                    ),
                    String::new(),
                ),
                _ => (
                    String::new(),
                    format!(
                        "<form method=\"post\" action=\"/account/api-keys/{id}/roll\">{csrf}\
                         <button type=\"submit\" class=\"secondary\" aria-label=\"Roll {name}\">Roll</button></form>"
                    ),
                ),
            };
            let _ = writeln!(
                *html,
                "<tr class=\"api-key\"><td><code>{prefix}…</code></td><td>{name}{note}</td><td>{}</td><td>{used}</td><td class=\"actions\">\
                 {roll}<form method=\"post\" action=\"/account/api-keys/{id}/revoke\">{csrf}\
                 <button type=\"submit\" class=\"danger\" aria-label=\"Revoke {name}\">Revoke</button></form></td></tr>",
                esc(&scopes),
            );
        }
        html.push_str("</tbody>\n</table>\n");
    }
    let _ = write!(
        *html,
        "<form method=\"post\" action=\"/account/api-keys\" class=\"card\" id=\"create-api-key\">{csrf}\n\
         <h3>Create an API key</h3>\n\
         <label for=\"key-name\">Name</label>\n<input id=\"key-name\" name=\"name\" required maxlength=\"100\">\n\
         <fieldset><legend>Scopes</legend>\n\
         <input type=\"checkbox\" id=\"scope-profile\" name=\"scope\" value=\"profile\" checked> <label for=\"scope-profile\" class=\"inline\">profile</label>\n\
         <input type=\"checkbox\" id=\"scope-payments\" name=\"scope\" value=\"payments\"> <label for=\"scope-payments\" class=\"inline\">payments</label>\n\
         </fieldset>\n\
         <label for=\"key-environment\">Environment</label>\n<select id=\"key-environment\" name=\"environment\">\
         <option value=\"test\">test (sk_test_)</option><option value=\"live\">live (sk_live_)</option></select>\n\
         <button type=\"submit\">Create key</button>\n</form>\n</section>\n"
    );
}

/// `POST /account/sessions/{handle}/end`.
pub(crate) async fn end_session(
    State(AppState(app)): State<AppState>,
    Path(handle): Path<String>,
    request: Request,
) -> Response {
    let (signed, _) = match signed_form(&app, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    sign_out(&app, &signed, &handle).await
}

/// `POST /account/sign-out-others`: every other credential of the user's sessions ends
/// — other browsers, refresh families, access tokens issued so far — and this browser
/// continues in a new session (a new id).
pub(crate) async fn sign_out_others(
    State(AppState(app)): State<AppState>,
    request: Request,
) -> Response {
    let (request, client) = match Client::of(&app, request) {
        Ok(ok) => ok,
        Err(e) => return failure(e),
    };
    let (signed, _) = match signed_form(&app, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    if let Err(e) = app
        .service
        .logout_everywhere_keeping_api_keys(&signed.user.id)
        .await
    {
        return failure(e.into());
    }
    match new_session(&app, &signed.user, &client).await {
        Ok(cookie) => see_other("/account", cookie),
        Err(e) => failure(e),
    }
}

/// The scopes a key made on the account page may hold (never `api-keys`: a key does
/// not make keys).
const PAGE_KEY_SCOPES: [&str; 2] = ["profile", "payments"];

/// `POST /account/api-keys`.
pub(crate) async fn create_key(
    State(AppState(app)): State<AppState>,
    request: Request,
) -> Response {
    let (signed, form) = match sensitive_form(&app, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let environment = match form.one("environment") {
        None | Some("test") => Environment::Test,
        Some("live") => Environment::Live,
        Some(_) => return failure(ApiError::BadRequest("environment must be live or test")),
    };
    let scopes = form.all("scope");
    if !scopes.iter().all(|s| PAGE_KEY_SCOPES.contains(&s.as_str())) {
        return failure(ApiError::BadRequest(
            "a requested scope cannot be granted to an API key",
        ));
    }
    let name = form.one("name").unwrap_or_default().trim().to_owned();
    let created = match app
        .service
        .issue_api_key(NewApiKey::new(&signed.user.id, name, environment).scopes(scopes))
        .await
    {
        Ok(created) => created,
        Err(e) => return failure(e.into()),
    };
    show_once(&app, &signed, created.key.expose_secret())
}

/// `303` to the account page with `key` waiting in the one-time cookie.
fn show_once(app: &App, signed: &Signed, key: &str) -> Response {
    let notice = NewKeyNotice {
        new_api_key: key.to_owned(),
        session: signed.session.handle.clone(),
    };
    match app.service.issue_payment(notice, &signed.user.id) {
        Ok(sealed) => see_other(
            "/account",
            set_cookie(&app.pages.new_key, &sealed, Some(NEW_KEY_DISPLAY)),
        ),
        Err(e) => failure(e.into()),
    }
}

/// `POST /account/api-keys/{id}/revoke`.
pub(crate) async fn revoke_key(
    State(AppState(app)): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (signed, _) = match signed_form(&app, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    match app.service.revoke_api_key(&signed.user.id, &id).await {
        Ok(_)
        | Err(token_policy::Error::Opaque(
            token_opaque::Error::NotFound | token_opaque::Error::InvalidInput(_),
        )) => see_other("/account", []),
        Err(e) => failure(e.into()),
    }
}

/// `POST /account/api-keys/{id}/roll`: a new key replaces it (the old one works one
/// more day), shown once.
pub(crate) async fn roll_key(
    State(AppState(app)): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (signed, _) = match sensitive_form(&app, request).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    match app
        .service
        .roll_api_key(&signed.user.id, &id, ROLL_OVERLAP)
        .await
    {
        Ok(rolled) => show_once(&app, &signed, rolled.key.expose_secret()),
        Err(token_policy::Error::Opaque(
            token_opaque::Error::NotFound | token_opaque::Error::InvalidInput(_),
        )) => see_other("/account", []),
        Err(e) => failure(e.into()),
    }
}

// ---------------------------------------------------------------- password reset

fn reset_page(message: Option<String>) -> Response {
    page(
        StatusCode::OK,
        "Reset your password",
        &format!(
            "<h1>Reset your password</h1>\n{}\n\
             <form method=\"post\" action=\"/reset\" class=\"card\">\n\
             <label for=\"username\">User name</label>\n\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required>\n\
             <button type=\"submit\">Send a reset message</button>\n</form>\n\
             <p><a href=\"/reset/confirm\">I have a reset token</a> · <a href=\"/login\">Sign in</a></p>",
            message.unwrap_or_default()
        ),
    )
}

/// `GET /reset`.
pub(crate) async fn reset_form() -> Response {
    reset_page(None)
}

/// `POST /reset`: the same answer whether the name is an account or not.
pub(crate) async fn reset_submit(
    State(AppState(app)): State<AppState>,
    request: Request,
) -> Response {
    if let Err(why) = app.pages.same_origin(request.headers()) {
        return refused(why);
    }
    let username = match Fields::read(request).await {
        Ok(f) => f.text("username"),
        Err(response) => return response,
    };
    if username.is_empty() || username.len() > 256 {
        return reset_page(Some(notice("error", "A user name is 1 to 256 characters.")));
    }
    if app.resets.try_send(username).is_err() {
        return failure(token_axum::Error::Unavailable("password-reset queue full".into()).into());
    }
    reset_page(Some(notice(
        "info",
        "If the account exists, a message with a reset token is on its way.",
    )))
}

fn confirm_page(status: StatusCode, message: Option<String>) -> Response {
    page(
        status,
        "Choose a new password",
        &format!(
            "<h1>Choose a new password</h1>\n{}\n\
             <form method=\"post\" action=\"/reset/confirm\" class=\"card\">\n\
             <label for=\"token\">Reset token (from the message)</label>\n\
             <input id=\"token\" name=\"token\" required autocomplete=\"off\" spellcheck=\"false\">\n\
             <label for=\"new_password\">New password (8 characters or more)</label>\n\
             <input id=\"new_password\" name=\"new_password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\" required>\n\
             <button type=\"submit\">Set the password</button>\n</form>\n\
             <p><a href=\"/login\">Sign in</a></p>",
            message.unwrap_or_default()
        ),
    )
}

/// `GET /reset/confirm`.
pub(crate) async fn confirm_form() -> Response {
    confirm_page(StatusCode::OK, None)
}

/// `POST /reset/confirm`: the token is spent, the password changed, every credential of
/// the account ends (as `POST /password-reset/confirm`).
pub(crate) async fn confirm_submit(
    State(AppState(app)): State<AppState>,
    request: Request,
) -> Response {
    if let Err(why) = app.pages.same_origin(request.headers()) {
        return refused(why);
    }
    let (token, new_password) = match Fields::read(request).await {
        Ok(f) => (f.secret("token"), f.secret("new_password")),
        Err(response) => return response,
    };
    match reset_password(&app, &token, new_password).await {
        Ok(()) => page(
            StatusCode::OK,
            "Password changed",
            &format!(
                "<h1>Password changed</h1>\n{}\n<p><a href=\"/login\">Sign in</a></p>",
                notice(
                    "info",
                    "Your password is changed, and every device was signed out."
                )
            ),
        ),
        Err(ApiError::BadRequest(text)) => confirm_page(
            StatusCode::BAD_REQUEST,
            Some(notice("error", &format!("{}.", capitalise(text)))),
        ),
        Err(ApiError::BodyToken { .. }) => confirm_page(
            StatusCode::BAD_REQUEST,
            Some(notice(
                "error",
                "That reset token is not valid: it may be mistyped, used or expired.",
            )),
        ),
        Err(e) => failure(e),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `GET /static/style.css`.
pub(crate) async fn style() -> Response {
    let mut response = STYLE.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

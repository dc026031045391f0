//! The route handlers.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    pub(crate) username: String,
    pub(crate) password: SecretString,
}

/// The access token as JSON and the refresh token as a cookie; `"token_type": "DPoP"`
/// for tokens bound to a key (`bound`), with a fresh `DPoP-Nonce` when the nonce in
/// use is about to rotate.
pub(crate) fn token_response(
    app: &App,
    tokens: &LoginTokens,
    bound: bool,
    parts: Option<&Parts>,
) -> Response {
    let body = json!({
        "access_token": tokens.access.expose_secret(),
        "token_type": if bound { "DPoP" } else { "Bearer" },
        "expires_in": tokens.expires_in.as_secs(),
    });
    let mut response = Json(body).into_response();
    if let Some(nonce) = parts.and_then(|p| app.auth.fresh_dpop_nonce(p)) {
        token_axum::dpop::set_nonce(response.headers_mut(), &nonce);
    }
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = app.cookie.set(&tokens.refresh) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    // The fingerprint of a bearer token, in its own hardened cookie.
    if let (Some(jar), Some(fingerprint)) = (&app.fingerprint, &tokens.fingerprint) {
        if let Some(cookie) = jar.set(fingerprint) {
            headers.append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// Adds the headers that clear the refresh and fingerprint cookies.
pub(crate) fn clear_cookies(app: &App, response: &mut Response) {
    if let Some(clear) = app.cookie.clear() {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    if let Some(clear) = app.fingerprint.as_ref().and_then(RefreshCookie::clear) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
}

/// After "log out everywhere", access tokens issued up to the cut-off second are
/// refused; a login in that same second waits for the next one, so its token is not
/// born revoked.
pub(crate) async fn wait_past_cutoff(
    service: &TokenService,
    user_id: &str,
) -> Result<(), ApiError> {
    let cutoff = service
        .blocklist()
        .subject_cutoff(user_id)
        .await
        .map_err(token_axum::Error::from)?;
    if let Some(cutoff) = cutoff {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let after = Duration::from_secs(u64::try_from(cutoff.unix_seconds()).unwrap_or(0) + 1);
        if let Some(wait) = after.checked_sub(now) {
            tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
        }
    }
    Ok(())
}

/// The DPoP proof of a token request, checked: `Ok(None)` without one, the
/// token endpoint's `400` answer for a refused one.
pub(crate) async fn token_request_proof(
    app: &App,
    parts: &Parts,
) -> Result<Option<VerifiedProof>, Response> {
    app.auth
        .token_request_proof(parts)
        .await
        .map_err(|e| e.into_token_endpoint_response(Some(ISSUER)))
}

pub(crate) async fn login(
    State(AppState(app)): State<AppState>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    parts: Parts,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    // The proof first: a client told to use a nonce retries without spending a
    // password attempt.
    let proof = match token_request_proof(&app, &parts).await {
        Ok(proof) => proof,
        Err(response) => return Ok(response),
    };
    let user = authenticate(&app, peer, &request.username, request.password).await?;
    let tokens = start_session(
        &app,
        &user,
        proof.as_ref().map(|p| p.jkt.as_str()),
        Some(&parts),
    )
    .await?;
    Ok(token_response(
        &app,
        &tokens,
        proof.is_some(),
        proof.map(|_| &parts),
    ))
}

/// `POST /login`: a form (the sign-in page) or JSON (the API), by `Content-Type`.
pub(crate) async fn login_any(
    state: State<AppState>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    request: axum::extract::Request,
) -> Response {
    if super::pages::is_form(request.headers()) {
        return super::pages::login_submit(state, peer, request).await;
    }
    // The head stays for the DPoP proof.
    let (parts, body) = request.into_parts();
    let request = axum::extract::Request::from_parts(parts.clone(), body);
    match JsonBody::<LoginRequest>::from_request(request, &()).await {
        Ok(body) => login(state, peer, parts, body).await.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Checks a name and password under the login limits: the user, or
/// [`ApiError::InvalidCredentials`] (the same for an unknown name and a wrong password),
/// `429` past a limit, `503` when no password check is free.
pub(crate) async fn authenticate(
    app: &App,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    username: &str,
    password: SecretString,
) -> Result<Arc<User>, ApiError> {
    let Ok(ConnectInfo(peer)) = peer else {
        return Err(token_axum::Error::Config(
            "login needs the client address: serve with token_axum::serve, which gives each request ConnectInfo".into(),
        )
        .into());
    };
    // Counted as failures until the password is found right (see `LoginLimits`).
    let by_address = app.login.per_address.begin(address_key(peer.ip()))?;
    if !valid_username(username) {
        // No account has such a name: nothing to check, nor to keep as a key.
        return Err(ApiError::InvalidCredentials);
    }
    let by_account = match app.login.per_account.begin(username.to_owned()) {
        Ok(attempt) => attempt,
        Err(limited) => {
            by_address.forgive();
            return Err(limited.into());
        }
    };
    let user = app.user(username).cloned();
    let hash = match &user {
        Some(u) => u
            .password_hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        None => app.dummy_hash.clone(),
    };
    let memory = app.login.memory.clone();
    let checked = app
        .login
        .checks
        .spawn_blocking(move || {
            let mut blocks = memory.take();
            let matches = password_matches(&hash, password.expose_secret().as_bytes(), &mut blocks);
            memory.give_back(blocks);
            matches
        })
        .await;
    let matches = match checked {
        Ok(matches) => matches,
        // Busy (503): no password was checked.
        Err(e) => {
            by_address.forgive();
            by_account.forgive();
            return Err(e.into());
        }
    };
    let Some(user) = user.filter(|_| matches) else {
        return Err(ApiError::InvalidCredentials);
    };
    by_address.forgive();
    by_account.forgive();
    Ok(user)
}

/// A new login session for `user`: an access token and a refresh family, bound to
/// the client key `jkt` when given.
pub(crate) async fn start_session(
    app: &App,
    user: &User,
    jkt: Option<&str>,
    parts: Option<&Parts>,
) -> Result<LoginTokens, ApiError> {
    wait_past_cutoff(&app.service, &user.id).await?;
    let claims =
        app.claims_for(&user.id, parts)?
            .ok_or(ApiError::Auth(token_axum::Error::InvalidToken(
                Reason::InvalidToken,
            )))?;
    Ok(match jkt {
        Some(jkt) => {
            app.service
                .login_bound_to_key(&user.id, &claims, jkt)
                .await?
        }
        None => app.service.login(&user.id, &claims).await?,
    })
}

/// Rotates the refresh token `raw`, if its user still exists: the family of a user
/// that is gone is revoked (`401 revoked`), never answered with a token.
pub(crate) async fn refresh_session(
    app: &App,
    raw: &str,
    proof: Option<&VerifiedProof>,
    parts: Option<&Parts>,
) -> Result<LoginTokens, ApiError> {
    let family = app
        .service
        .opaque()?
        .refresh()
        .family_of(raw)
        .await
        .map_err(token_axum::Error::from)?;
    // The context is re-recorded at each refresh (from the refresh request): the
    // refresh token itself is guarded by rotation, reuse detection and, for DPoP
    // clients, the key.
    let Some(claims) = app.claims_for(&family.user_id, parts)? else {
        app.service
            .revoke_session(&family.user_id, &family.id)
            .await?;
        return Err(token_axum::Error::InvalidToken(Reason::Revoked).into());
    };
    // A refresh token stays in its family, and a family with its user: the claims
    // looked up here are those of the user the rotation names.
    Ok(match proof {
        Some(proof) => {
            app.service
                .refresh_dpop(raw, proof, |_| std::future::ready(claims))
                .await?
        }
        None => app.service.refresh(raw, |_| claims).await?,
    })
}

pub(crate) async fn refresh(State(AppState(app)): State<AppState>, parts: Parts) -> Response {
    let headers = &parts.headers;
    let Some(raw) = app.cookie.read(headers) else {
        return ApiError::Auth(token_axum::Error::MissingCredentials).into_response();
    };
    let proof = match token_request_proof(&app, &parts).await {
        Ok(proof) => proof,
        Err(response) => return response,
    };
    match refresh_session(&app, raw, proof.as_ref(), Some(&parts)).await {
        Ok(tokens) => token_response(&app, &tokens, proof.is_some(), proof.map(|_| &parts)),
        Err(error) => {
            let forget = matches!(&error, ApiError::Auth(token_axum::Error::InvalidToken(_)));
            let mut response = error.into_response();
            if forget {
                clear_cookies(&app, &mut response);
            }
            response
        }
    }
}

/// `POST /logout`: a form (the account page's "sign out") or the API's, by
/// `Content-Type`.
pub(crate) async fn logout_any(
    State(AppState(app)): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    if super::pages::is_form(request.headers()) {
        return super::pages::logout_submit(app, request).await;
    }
    let (parts, _) = request.into_parts();
    // The refresh cookie rides along on its own: a browser's call must come from this
    // service's pages or an allowed origin (a same-site page of another origin could
    // otherwise end the session with a `text/plain` form).
    if app.cookie.read(&parts.headers).is_some() {
        if let Err(why) = app.pages.api_cookie_origin(&parts.headers) {
            return ApiError::CrossSite(why).into_response();
        }
    }
    logout(app, parts).await.into_response()
}

pub(crate) async fn logout(app: Arc<App>, parts: Parts) -> Result<Response, ApiError> {
    // A bound token ends its session only with a proof by its key.
    let access = match dpop_token(&parts)? {
        Some(token) => {
            if let Err(e) = app
                .auth
                .authenticate(&parts, &[Credential::AccessToken])
                .await
            {
                return Ok(app.auth.error_response(e, &parts));
            }
            Some(token)
        }
        None => bearer_token(&parts)?,
    };
    let refresh = app.cookie.read(&parts.headers);
    if access.is_none() && refresh.is_none() {
        return Err(token_axum::Error::MissingCredentials.into());
    }
    // A credential that is already unusable (expired, unknown) needs no revocation and
    // is not an error; another kind of token is a client mistake, never a success.
    match app
        .service
        .logout(access.unwrap_or_default(), refresh.unwrap_or_default())
        .await
    {
        Ok(()) => {}
        Err(
            token_policy::Error::WrongTokenType { .. }
            | token_policy::Error::Opaque(token_opaque::Error::WrongKind { .. }),
        ) => {
            return Err(ApiError::BadRequest(
                "logout takes the access token (Authorization: Bearer) and the refresh cookie; \
                 another kind of token was given",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_cookies(&app, &mut response);
    Ok(response)
}

pub(crate) async fn payment_token(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    JsonBody(payment): JsonBody<Payment>,
) -> Result<Response, ApiError> {
    payment.check()?;
    let token = app.service.issue_payment(payment, access.subject())?;
    Ok(no_store(Json(
        json!({ "payment_token": token.expose_secret() }),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsumeRequest {
    pub(crate) payment_token: SecretString,
}

pub(crate) async fn payment_consume(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    JsonBody(request): JsonBody<ConsumeRequest>,
) -> Result<Response, ApiError> {
    let payment: Payment = app
        .service
        .consume_payment(request.payment_token.expose_secret(), access.subject())
        .await
        .map_err(|e| ApiError::body_token(e, payment_token_error))?;
    Ok(no_store(Json(payment)))
}

/// The answer to a refused payment token (the caller's own credential is fine).
fn payment_token_error(reason: Reason) -> (StatusCode, &'static str) {
    match reason {
        // Used once already.
        Reason::AlreadyUsed => (StatusCode::CONFLICT, "payment_token_used"),
        // It does not decrypt under the caller's assertion: another user's token (or
        // one altered, or not this service's) — a token is bound to its user.
        Reason::InvalidToken | Reason::WrongSubject => {
            (StatusCode::FORBIDDEN, "payment_token_not_yours")
        }
        // Malformed, expired, another kind of token, …
        _ => (StatusCode::BAD_REQUEST, "invalid_payment_token"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKeyRequest {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    #[serde(default)]
    pub(crate) environment: Option<String>,
}

pub(crate) async fn create_api_key(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    JsonBody(request): JsonBody<NewKeyRequest>,
) -> Result<Response, ApiError> {
    let environment = match request.environment.as_deref() {
        None | Some("test") => Environment::Test,
        Some("live") => Environment::Live,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "environment must be \"live\" or \"test\"",
            ));
        }
    };
    // A key grants at most what its creator's token grants, and never makes keys.
    let grantable = |s: &String| s != "api-keys" && access.has_scope(s);
    if !request.scopes.iter().all(grantable) {
        return Err(ApiError::BadRequest(
            "a requested scope cannot be granted to an API key",
        ));
    }
    let created = app
        .service
        .issue_api_key(
            NewApiKey::new(access.subject(), request.name, environment).scopes(request.scopes),
        )
        .await?;
    let info = &created.info;
    let body = json!({
        "id": info.id,
        "key": created.key.expose_secret(),
        "name": info.name,
        "scopes": info.scopes,
        "environment": if info.environment == Environment::Live { "live" } else { "test" },
    });
    Ok((StatusCode::CREATED, no_store(Json(body))).into_response())
}

/// `GET /api-keys`: the caller's keys, revoked and expired ones included until purged,
/// oldest first — their metadata, never a key.
pub(crate) async fn list_api_keys(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
) -> Result<Response, ApiError> {
    let keys = app
        .service
        .opaque()?
        .api_keys()
        .list(access.subject())
        .await
        .map_err(token_axum::Error::from)?;
    let now = token_core::Clock::now(&token_core::SystemClock);
    let seconds = |t: Option<token_core::Timestamp>| t.map(token_core::Timestamp::unix_seconds);
    let keys: Vec<_> = keys
        .iter()
        .map(|key| {
            json!({
                "id": key.id,
                "name": key.name,
                "scopes": key.scopes,
                "environment": if key.environment == Environment::Live { "live" } else { "test" },
                "active": key.is_active(now),
                "created_at": key.created_at.unix_seconds(),
                "expires_at": seconds(key.expires_at),
                "last_used_at": seconds(key.last_used_at),
                "revoked_at": seconds(key.revoked_at),
            })
        })
        .collect();
    Ok(no_store(Json(json!({ "api_keys": keys }))))
}

pub(crate) async fn revoke_api_key(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Through the service: every instance's cache of verified keys drops it too.
    match app.service.revoke_api_key(access.subject(), &id).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(token_policy::Error::Opaque(
            token_opaque::Error::NotFound | token_opaque::Error::InvalidInput(_),
        )) => Err(ApiError::NotFound),
        Err(e) => Err(token_axum::Error::from(e).into()),
    }
}

pub(crate) async fn me(
    State(AppState(app)): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    // The route's auth layer put the principal in the request: read in place (the
    // `Principal` extractor would clone it).
    let Some(principal) = request.extensions().get::<Principal>() else {
        return ApiError::Auth(token_axum::Error::MissingCredentials).into_response();
    };
    let credential = match principal.credential() {
        Credential::ApiKey => "api_key",
        _ => "access_token",
    };
    let username = app
        .users_by_id
        .get(principal.subject())
        .map(|u| u.name.as_str());
    let scopes = principal.scopes();
    no_store(Json(Me {
        user_id: principal.subject(),
        username,
        credential,
        scopes: &scopes,
    }))
}

/// `GET /me`'s answer, written straight from the principal (no JSON tree built first).
#[derive(Serialize)]
struct Me<'a> {
    user_id: &'a str,
    username: Option<&'a str>,
    credential: &'static str,
    scopes: &'a [String],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequest {
    pub(crate) username: String,
}

pub(crate) async fn password_reset(
    State(AppState(app)): State<AppState>,
    JsonBody(request): JsonBody<ResetRequest>,
) -> Result<Response, ApiError> {
    if request.username.is_empty() || request.username.len() > 256 {
        return Err(ApiError::BadRequest("username must be 1-256 bytes"));
    }
    // The same work and the same answer whether the name is an account or not: the
    // name is queued, and the worker decides (see `reset_worker`).
    match app.resets.try_send(request.username) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "status": "if the account exists, a message is on its way" })),
        )
            .into_response()),
        Err(_) => Err(token_axum::Error::Unavailable("password-reset queue full".into()).into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetConfirm {
    pub(crate) token: SecretString,
    pub(crate) new_password: SecretString,
}

pub(crate) async fn password_reset_confirm(
    State(AppState(app)): State<AppState>,
    JsonBody(request): JsonBody<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    reset_password(&app, &request.token, request.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Spends the password-reset `token` and sets `new_password`; then every credential of
/// the account ends. A bad token is [`ApiError::BodyToken`] (`invalid_reset_token`).
pub(crate) async fn reset_password(
    app: &App,
    token: &SecretString,
    new_password: SecretString,
) -> Result<(), ApiError> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&new_password.expose_secret().len()) {
        return Err(ApiError::BadRequest("a password is 8 to 1024 bytes"));
    }
    // The password hash takes a turn among the bounded password checks, and takes it
    // before the single-use token is spent: a busy server (503) leaves the token valid
    // for the retry.
    let permit = app.login.checks.acquire().await?;
    // A bad reset token is the body's, not the caller's credential: 400.
    let invalid_reset_token = |_| (StatusCode::BAD_REQUEST, "invalid_reset_token");
    let redeemed = app
        .service
        .redeem_one_time(OneTimeKind::PasswordReset, token.expose_secret())
        .await
        .map_err(|e| ApiError::body_token(e, invalid_reset_token))?;
    let Some(user) = app.users_by_id.get(&redeemed.user_id).cloned() else {
        return Err(ApiError::BodyToken {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_reset_token",
            reason: Reason::InvalidToken,
        });
    };
    let password = new_password;
    let hash = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        hash_password(password.expose_secret().as_bytes())
    })
    .await
    .map_err(|_| token_axum::Error::Internal("password hashing stopped".into()))?
    .map_err(|e| token_axum::Error::Internal(e.to_string()))?;
    *user
        .password_hash
        .write()
        .unwrap_or_else(PoisonError::into_inner) = hash;
    // Every credential ends: refresh families, sessions, one-time tokens, API keys;
    // access tokens issued until now are refused.
    app.service.logout_everywhere(&user.id).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    pub(crate) current_password: SecretString,
    pub(crate) new_password: SecretString,
}

/// `POST /password`: a signed-in user changes its password, giving the current one.
///
/// A wrong current password answers `403 wrong_password` (not `401`: the caller's
/// access token is fine) and counts as a failed login of the account, under the same
/// limit (`429` past it). Then, as after a password reset, every credential of the user
/// ends — every session on every device (this one too), access tokens, API keys and
/// pending one-time tokens — and the caller gets a new login session, as `POST /login`
/// answers: whoever else held the account keeps nothing, and this tab stays signed in.
pub(crate) async fn change_password(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    parts: Parts,
    JsonBody(request): JsonBody<PasswordChange>,
) -> Result<Response, ApiError> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&request.new_password.expose_secret().len()) {
        return Err(ApiError::BadRequest("a password is 8 to 1024 bytes"));
    }
    let Some(user) = app.users_by_id.get(access.subject()).cloned() else {
        return Err(token_axum::Error::InvalidToken(Reason::InvalidToken).into());
    };
    // Counted as a failure until the current password is found right.
    let attempt = app.login.per_account.begin(user.name.clone())?;
    let hash = user
        .password_hash
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let memory = app.login.memory.clone();
    let (current, new) = (request.current_password, request.new_password);
    // One turn among the bounded password checks for the check and the new hash.
    let checked = app
        .login
        .checks
        .spawn_blocking(move || {
            let mut blocks = memory.take();
            let matches = password_matches(&hash, current.expose_secret().as_bytes(), &mut blocks);
            memory.give_back(blocks);
            matches
                .then(|| hash_password(new.expose_secret().as_bytes()))
                .transpose()
        })
        .await;
    let new_hash = match checked {
        Ok(Ok(Some(new_hash))) => new_hash,
        Ok(Ok(None)) => return Err(ApiError::WrongPassword),
        Ok(Err(e)) => {
            attempt.forgive();
            return Err(token_axum::Error::Internal(e.to_string()).into());
        }
        Err(busy) => {
            attempt.forgive();
            return Err(busy.into());
        }
    };
    attempt.forgive();
    *user
        .password_hash
        .write()
        .unwrap_or_else(PoisonError::into_inner) = new_hash;
    app.service.logout_everywhere(&user.id).await?;
    // A session bound to a key stays bound to it.
    let jkt = access
        .all_claims()
        .custom
        .cnf
        .as_ref()
        .map(|c| c.jkt.clone());
    let tokens = start_session(&app, &user, jkt.as_deref(), Some(&parts)).await?;
    Ok(token_response(&app, &tokens, jkt.is_some(), None))
}

/// `POST /logout-everywhere`: ends every login session of the caller's user, on every
/// device, this one included — refresh families, access tokens, pending one-time
/// tokens — and clears this browser's cookie. API keys are not sessions and stay;
/// `POST /password` ends them too.
pub(crate) async fn logout_everywhere(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
) -> Result<Response, ApiError> {
    app.service
        .logout_everywhere_keeping_api_keys(access.subject())
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_cookies(&app, &mut response);
    Ok(response)
}

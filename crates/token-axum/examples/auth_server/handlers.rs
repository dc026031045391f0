//! The route handlers.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    pub(crate) username: String,
    pub(crate) password: SecretString,
}

/// The access token as JSON and the refresh token as a cookie.
pub(crate) fn token_response(app: &App, tokens: &LoginTokens) -> Response {
    let body = json!({
        "access_token": tokens.access.expose_secret(),
        "token_type": "Bearer",
        "expires_in": tokens.expires_in.as_secs(),
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = app.cookie.set(&tokens.refresh) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
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

pub(crate) async fn login(
    State(AppState(app)): State<AppState>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    body: Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let Ok(ConnectInfo(peer)) = peer else {
        return Err(token_axum::Error::Config(
            "login needs the client address: serve with token_axum::serve, which gives each request ConnectInfo".into(),
        )
        .into());
    };
    let Json(request) = body?;
    // Counted as failures until the password is found right (see `LoginLimits`).
    let by_address = app.login.per_address.begin(address_key(peer.ip()))?;
    if !valid_username(&request.username) {
        // No account has such a name: nothing to check, nor to keep as a key.
        return Err(ApiError::InvalidCredentials);
    }
    let by_account = match app.login.per_account.begin(request.username.clone()) {
        Ok(attempt) => attempt,
        Err(limited) => {
            by_address.forgive();
            return Err(limited.into());
        }
    };
    let user = app.user(&request.username).cloned();
    let hash = match &user {
        Some(u) => u
            .password_hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        None => app.dummy_hash.clone(),
    };
    let password = request.password;
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
    wait_past_cutoff(&app.service, &user.id).await?;
    let tokens = app
        .service
        .login(&user.id, &app.claims_for(&user.id))
        .await?;
    Ok(token_response(&app, &tokens))
}

pub(crate) async fn refresh(State(AppState(app)): State<AppState>, headers: HeaderMap) -> Response {
    let Some(raw) = app.cookie.read(&headers) else {
        return ApiError::Auth(token_axum::Error::MissingCredentials).into_response();
    };
    match app.service.refresh(raw, |user| app.claims_for(user)).await {
        Ok(tokens) => token_response(&app, &tokens),
        Err(e) => {
            let error = ApiError::from(e);
            let forget = matches!(&error, ApiError::Auth(token_axum::Error::InvalidToken(_)));
            let mut response = error.into_response();
            if forget {
                if let Some(clear) = app.cookie.clear() {
                    response.headers_mut().insert(header::SET_COOKIE, clear);
                }
            }
            response
        }
    }
}

pub(crate) async fn logout(
    State(AppState(app)): State<AppState>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let access = bearer_token(&parts)?;
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
    if let Some(clear) = app.cookie.clear() {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    Ok(response)
}

pub(crate) async fn payment_token(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    body: Body<Payment>,
) -> Result<Response, ApiError> {
    let Json(payment) = body?;
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
    body: Body<ConsumeRequest>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let payment: Payment = app
        .service
        .consume_payment(request.payment_token.expose_secret(), access.subject())
        .await?;
    Ok(no_store(Json(payment)))
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
    body: Body<NewKeyRequest>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
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

pub(crate) async fn revoke_api_key(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let opaque = app.service.opaque()?;
    match opaque.api_keys().revoke(access.subject(), &id).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(token_opaque::Error::NotFound | token_opaque::Error::InvalidInput(_)) => {
            Err(ApiError::NotFound)
        }
        Err(e) => Err(token_axum::Error::from(e).into()),
    }
}

pub(crate) async fn me(State(AppState(app)): State<AppState>, principal: Principal) -> Response {
    let credential = match principal.credential() {
        Credential::ApiKey => "api_key",
        _ => "access_token",
    };
    let username = app
        .users_by_id
        .get(principal.subject())
        .map(|u| u.name.clone());
    no_store(Json(json!({
        "user_id": principal.subject(),
        "username": username,
        "credential": credential,
        "scopes": &*principal.scopes(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequest {
    pub(crate) username: String,
}

pub(crate) async fn password_reset(
    State(AppState(app)): State<AppState>,
    body: Body<ResetRequest>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
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
    body: Body<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    let Json(request) = body?;
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&request.new_password.expose_secret().len()) {
        return Err(ApiError::BadRequest("a password is 8 to 1024 bytes"));
    }
    // The password hash takes a turn among the bounded password checks, and takes it
    // before the single-use token is spent: a busy server (503) leaves the token valid
    // for the retry.
    let permit = app.login.checks.acquire().await?;
    let redeemed = app
        .service
        .redeem_one_time(OneTimeKind::PasswordReset, request.token.expose_secret())
        .await?;
    let Some(user) = app.users_by_id.get(&redeemed.user_id).cloned() else {
        return Err(token_axum::Error::InvalidToken(token_core::Reason::InvalidToken).into());
    };
    let password = request.new_password;
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
    Ok(StatusCode::NO_CONTENT)
}

//! The running service: its state, its users, and the router.

use super::*;

/// A user account. The id (random when the user is first configured, then kept in the
/// database: see [`UserTable`]) is the tokens' subject; the name stays out of tokens.
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) password_hash: RwLock<String>,
}

/// The claims in this service's access tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserClaims {
    pub(crate) role: String,
    /// Space-separated scopes.
    pub(crate) scope: String,
    /// The client context at login (`--context-check`): a keyed hash, see
    /// `token_axum::context` (its claim name is `context::CONTEXT_CLAIM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ctx: Option<String>,
}

/// A payment, as the payment token carries it (encrypted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Payment {
    pub(crate) order_id: String,
    /// In minor units (cents).
    pub(crate) amount: u64,
    /// ISO 4217, three capital letters.
    pub(crate) currency: String,
    /// The payment provider's card token.
    pub(crate) psp_card_token: String,
    pub(crate) idempotency_key: String,
}

impl Payment {
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        let field = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
        };
        if !field(&self.order_id, 128) {
            return Err(ApiError::BadRequest("order_id must be 1-128 characters"));
        }
        if self.amount == 0 {
            return Err(ApiError::BadRequest(
                "amount must be a positive number of minor units",
            ));
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(ApiError::BadRequest("currency must be an ISO 4217 code"));
        }
        if !field(&self.psp_card_token, 256) {
            return Err(ApiError::BadRequest(
                "psp_card_token must be 1-256 characters",
            ));
        }
        if !field(&self.idempotency_key, 128) {
            return Err(ApiError::BadRequest(
                "idempotency_key must be 1-128 characters",
            ));
        }
        Ok(())
    }
}

/// The running service.
pub(crate) struct App {
    pub(crate) service: Arc<TokenService>,
    /// The key table, when keys are kept in the database (`--kek-file`).
    pub(crate) keys: Option<Arc<KeyStore>>,
    pub(crate) auth: AuthState,
    pub(crate) cookie: RefreshCookie,
    /// The fingerprint cookie (`--fingerprint-cookie`).
    pub(crate) fingerprint: Option<RefreshCookie>,
    /// The client-context check of sensitive routes (`--context-check`).
    pub(crate) context: Option<ContextCheck>,
    pub(crate) users_by_name: HashMap<String, Arc<User>>,
    pub(crate) users_by_id: HashMap<String, Arc<User>>,
    /// Verified against when the name is unknown, so both cases cost the same.
    pub(crate) dummy_hash: String,
    pub(crate) mailer: Mailer,
    pub(crate) resets: tokio::sync::mpsc::Sender<String>,
    pub(crate) login: LoginGuard,
    /// The browser pages' cookies and origin rule.
    pub(crate) pages: pages::Pages,
}

impl App {
    pub(crate) fn user(&self, name: &str) -> Option<&Arc<User>> {
        self.users_by_name.get(name)
    }

    /// The claims of a user's access tokens, with the client context of `parts` when
    /// the context check is on; `None` for an id that is no user (any more): such a
    /// session is ended, never given a token.
    pub(crate) fn claims_for(
        &self,
        user_id: &str,
        parts: Option<&Parts>,
    ) -> Result<Option<UserClaims>, ApiError> {
        let ctx = match (&self.context, parts) {
            (Some(check), Some(parts)) => Some(check.context_of(parts)?),
            _ => None,
        };
        Ok(self.users_by_id.contains_key(user_id).then(|| UserClaims {
            role: "user".into(),
            scope: USER_SCOPES.join(" "),
            ctx,
        }))
    }
}

/// The router state.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<App>);

impl FromRef<AppState> for AuthState {
    fn from_ref(state: &AppState) -> Self {
        state.0.auth.clone()
    }
}

/// Builds the service and its router, with the default [`LoginLimits`]. Serve it with
/// [`serve`] (or anything that gives requests their `ConnectInfo<SocketAddr>`): a
/// login needs the client's address.
pub(crate) async fn build(options: Options) -> anyhow::Result<(Router, Arc<App>)> {
    build_with_limits(options, LoginLimits::default()).await
}

/// [`build`], with these login limits.
pub(crate) async fn build_with_limits(
    options: Options,
    limits: LoginLimits,
) -> anyhow::Result<(Router, Arc<App>)> {
    let store = token_policy::config::open_store(&options.database_url)
        .await
        .context("cannot open the database")?;
    let mut config = token_opaque::Config::default();
    config.api_keys.max_live_per_owner = options.max_api_keys;
    config.refresh.grace = options.refresh_grace;
    let opaque = OpaqueTokens::builder(store.clone())
        .config(config)
        .build()?;
    let refresh_lifetime = opaque.config().refresh.absolute_lifetime;
    let policy = Policy::new(ISSUER, AUDIENCE).fingerprint_cookie(options.fingerprint_cookie);
    // Verifiers may cache the key sets for this long: under half the publish-ahead
    // time, so every one has a new key before it signs.
    let mut key_set_max_age = token_axum::state::DEFAULT_KEY_SET_MAX_AGE;
    let (mut builder, keys) = match &options.keys {
        Some(k) => {
            let kek = Kek::from_file(&k.kek).context("cannot read --kek-file")?;
            let mut plan = KeyPlan::for_policy(&policy);
            if let Some(every) = k.rotate_every {
                plan = plan.rotate_every(every);
            }
            if let Some(ahead) = k.publish_ahead {
                plan = plan.publish_ahead(ahead);
            }
            if let Some(every) = k.refresh_every {
                plan = plan.refresh_every(every);
            }
            if let Some(ahead) = plan.schedule(token_policy::keystore::KeyJob::Access) {
                key_set_max_age = key_set_max_age.min(ahead.publish_ahead / 2);
            }
            plan.check(key_set_max_age).context("the key schedule")?;
            let keys = Arc::new(KeyStore::new(store, kek, plan)?);
            let snapshot = keys.open().await.context("cannot open the key table")?;
            (
                TokenService::builder_with_keys(policy, snapshot)?,
                Some(keys),
            )
        }
        None => (
            TokenService::builder(policy, PublicIssuer::new(SecretKey::<V4>::generate()?))
                .payment(LocalCipher::new(LocalKey::<V4>::generate()?)),
            None,
        ),
    };
    builder = builder.opaque(opaque);
    let feed = match &options.redis_url {
        Some(url) => Some(start_replica(url, options.revocation_max_staleness).await?),
        None => None,
    };
    if let Some(replica) = &feed {
        builder = builder
            .blocklist(replica.clone())
            .cache_api_keys(API_KEY_CACHE_TTL);
    }
    let service = Arc::new(builder.build());
    if let Some(keys) = &keys {
        tokio::spawn(keys.clone().keep_installed(Arc::downgrade(&service)));
    }
    let (auth, fingerprint, context) =
        http_auth(&options, &service, key_set_max_age, refresh_lifetime)?;
    let (users_by_name, users_by_id) =
        load_users(&options.database_url, options.users, &service).await?;
    let (resets, reset_names) = tokio::sync::mpsc::channel(RESET_QUEUE);
    let dummy = random_hex(16)?;
    let dummy_hash = tokio::task::spawn_blocking(move || hash_password(dummy.as_bytes())).await??;
    let app = Arc::new(App {
        service,
        keys,
        auth,
        cookie: RefreshCookie::new(!options.insecure_cookies, refresh_lifetime)?,
        fingerprint,
        context,
        users_by_name,
        users_by_id,
        dummy_hash,
        mailer: options.mailer,
        resets,
        login: LoginGuard::new(limits),
        pages: pages::Pages::new(
            !options.insecure_cookies,
            options.public_origin.as_deref(),
            options.cors_origins.clone(),
        )?,
    });
    tokio::spawn(reset_worker(Arc::downgrade(&app), reset_names));

    let metrics = metrics_route(feed, app.keys.clone())?;
    let oauth = oauth::routes(&app, &options.public_url)?;
    let log = options.request_log;
    let router = routes(&app, options.cors_origins, log, metrics, oauth);
    Ok((router, app))
}

/// The revocation replica fed by the Redis at `url`, failing closed past `max_staleness`
/// (the replica's default without it).
async fn start_replica(
    url: &str,
    max_staleness: Option<Duration>,
) -> anyhow::Result<Arc<ReplicatedBlocklist>> {
    let source = RedisBlocklist::connect(url)
        .await
        .context("cannot connect to Redis")?;
    let mut replica = ReplicaOptions::default();
    if let Some(bound) = max_staleness {
        replica = replica.max_staleness(bound);
    }
    Ok(Arc::new(
        ReplicatedBlocklist::start(source, replica)
            .await
            .context("cannot load the revocation state from Redis")?,
    ))
}

/// `GET /metrics`: the process's counters, and the gauges read at each scrape (the
/// revocation replica's lag, the key table's ages).
fn metrics_route(
    feed: Option<Arc<ReplicatedBlocklist>>,
    keys: Option<Arc<KeyStore>>,
) -> anyhow::Result<MetricsRoute> {
    let mut metrics = MetricsRoute::new(Prometheus::install()?);
    if let Some(replica) = feed {
        metrics = metrics.collect_with(move || replica.record_metrics());
    }
    if let Some(keys) = keys {
        metrics = metrics.collect_with(move || keys.record_metrics());
    }
    Ok(metrics)
}

/// How credentials travel over HTTP: API keys in `x-api-key` too, the realm, the key
/// sets' cache lifetime, and the bindings beyond bearer tokens the options ask for —
/// DPoP (with its public origin and nonces), the fingerprint cookie, the context
/// check.
fn http_auth(
    options: &Options,
    service: &Arc<TokenService>,
    key_set_max_age: Duration,
    cookie_lifetime: Duration,
) -> anyhow::Result<(AuthState, Option<RefreshCookie>, Option<ContextCheck>)> {
    let mut auth = AuthState::new(service.clone())
        .api_key_header(HeaderName::from_static(API_KEY_HEADER))
        .realm(ISSUER)
        .key_set_max_age(key_set_max_age);
    if let Some(origin) = options
        .public_origin
        .as_ref()
        .or(options.listen_origin.as_ref())
    {
        let mut dpop = DpopSettings::public_origin(origin).context("--public-origin")?;
        if let Some(secret) = &options.dpop_nonce {
            let nonces = if let Secret::Shared(secret) = secret {
                DpopNonces::new(SecretBytes::from_slice(secret.expose_secret()))?
            } else {
                eprintln!(
                    "warning: --dpop-nonce without a nonce secret: nonces are this \
                     process's own, and other instances refuse them"
                );
                DpopNonces::random()?
            };
            dpop = dpop.require_nonces(nonces);
        }
        auth = auth.dpop(dpop);
    }
    let fingerprint = if options.fingerprint_cookie {
        let cookie =
            RefreshCookie::named("fingerprint", !options.insecure_cookies, cookie_lifetime)?;
        auth = auth.fingerprint_cookie(cookie.cookie.clone());
        Some(cookie)
    } else {
        None
    };
    let context = match &options.context_check {
        Some(Secret::Shared(secret)) => Some(ContextCheck::new(SecretBytes::from_slice(
            secret.expose_secret(),
        ))?),
        Some(Secret::ProcessOnly) => {
            eprintln!(
                "warning: --context-check without a context secret: contexts are hashed under \
                 this process's own secret, and other instances see every one as changed"
            );
            Some(ContextCheck::random()?)
        }
        None => None,
    };
    Ok((auth, fingerprint, context))
}

/// The users of the configuration, each with the id the database keeps for it (see
/// [`UserTable`]) and its password hashed. Users the database knows that are no longer
/// configured lose every credential, then their ids.
async fn load_users(
    database_url: &str,
    users: Vec<(String, SecretString)>,
    service: &TokenService,
) -> anyhow::Result<(HashMap<String, Arc<User>>, HashMap<String, Arc<User>>)> {
    let table = UserTable::for_url(database_url);
    let names: Vec<String> = users.iter().map(|(name, _)| name.clone()).collect();
    let mut synced = table.sync(&names).await?;
    // Users no longer configured: every credential they hold ends, then their ids go.
    for (name, id) in &synced.removed {
        service
            .logout_everywhere(id)
            .await
            .with_context(|| format!("cannot revoke the credentials of removed user {name}"))?;
        eprintln!("user {name} is no longer configured: its credentials were revoked");
    }
    table
        .forget(synced.removed.iter().map(|(_, id)| id.clone()).collect())
        .await?;

    let mut users_by_name = HashMap::new();
    let mut users_by_id = HashMap::new();
    for (name, password) in users {
        let hash =
            tokio::task::spawn_blocking(move || hash_password(password.expose_secret().as_bytes()))
                .await??;
        let id = synced
            .ids
            .remove(&name)
            .with_context(|| format!("user {name} has no id"))?;
        let user = Arc::new(User {
            id,
            name: name.clone(),
            password_hash: RwLock::new(hash),
        });
        users_by_id.insert(user.id.clone(), user.clone());
        users_by_name.insert(name, user);
    }
    Ok((users_by_name, users_by_id))
}

/// The routes (with `GET /metrics` from `metrics` and the OAuth endpoints `oauth`),
/// their layers, CORS for `cors_origins` (none: no CORS), and the request log when
/// `request_log`.
fn routes(
    app: &Arc<App>,
    cors_origins: Vec<HeaderValue>,
    request_log: bool,
    metrics: MetricsRoute,
    oauth: Router<AppState>,
) -> Router {
    let auth = &app.auth;
    let access = |scope: &str| AuthLayer::new(auth.clone()).require_scope(scope);
    // Inside the auth layer: the client context of sensitive actions (a no-op without
    // --context-check).
    let sensitive = || axum::middleware::from_fn_with_state(app.clone(), context_guard);
    let router = Router::new()
        .route("/login", get(pages::login_form).post(login_any))
        .route("/account", get(pages::account))
        .route("/account/sessions/{handle}/end", post(pages::end_session))
        .route("/account/sign-out-others", post(pages::sign_out_others))
        .route("/account/api-keys", post(pages::create_key))
        .route("/account/api-keys/{id}/revoke", post(pages::revoke_key))
        .route("/account/api-keys/{id}/roll", post(pages::roll_key))
        .route("/reset", get(pages::reset_form).post(pages::reset_submit))
        .route(
            "/reset/confirm",
            get(pages::confirm_form).post(pages::confirm_submit),
        )
        .route(pages::STYLE_PATH, get(pages::style))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout_any))
        .route(
            "/logout-everywhere",
            post(logout_everywhere).route_layer(access("profile")),
        )
        .route(
            "/password",
            post(change_password)
                .route_layer(sensitive())
                .route_layer(access("profile")),
        )
        .route(
            "/payments/token",
            post(payment_token)
                .route_layer(sensitive())
                .route_layer(access("payments")),
        )
        .route(
            "/payments/consume",
            post(payment_consume).route_layer(access("payments")),
        )
        .route(
            "/api-keys",
            get(list_api_keys)
                .merge(post(create_api_key).route_layer(sensitive()))
                .route_layer(access("api-keys")),
        )
        .route(
            "/api-keys/{id}",
            delete(revoke_api_key).route_layer(access("api-keys")),
        )
        .route(
            "/me",
            get(me).route_layer(
                AuthLayer::accepting(auth.clone(), [Credential::AccessToken, Credential::ApiKey])
                    .require_scope("profile"),
            ),
        )
        .route("/password-reset", post(password_reset))
        .route("/password-reset/confirm", post(password_reset_confirm))
        .merge(well_known::routes())
        .merge(oauth)
        .merge(metrics.router())
        .fallback(|| async { ApiError::NotFound })
        .with_state(AppState(app.clone()));
    let cors = (!cors_origins.is_empty()).then(|| cors_layer(cors_origins));
    // One layer of the router's around every route: the request log (when on)
    // outermost, then CORS, the body limit, and JSON errors nearest the handlers.
    // Stacked here rather than by one `Router::layer` each, which would box (and clone,
    // per request) every route once per layer.
    router.layer(
        tower::ServiceBuilder::new()
            .option_layer(request_log.then(request_log_layer))
            .option_layer(cors)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .map_response(json_errors as fn(Response) -> Response),
    )
}

/// The client-context check of a sensitive route (`--context-check`): the context the
/// access token recorded at login must be this request's, or the answer is a step-up
/// challenge (`401 reauthentication_required`). Runs after the auth layer.
async fn context_guard(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(check) = &app.context else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    if let Err(e) = check.check_principal(&parts) {
        return app.auth.error_response(e, &parts);
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

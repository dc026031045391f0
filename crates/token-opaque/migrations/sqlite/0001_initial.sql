-- token-opaque schema, version 1 (SQLite).
-- Only hashes are stored. Times are Unix seconds. Every token row carries its kind.

CREATE TABLE opaque_api_keys (
    id            TEXT    PRIMARY KEY,
    token_hash    BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    pepper_id     TEXT,
    kind          TEXT    NOT NULL CHECK (kind IN ('api_key_live', 'api_key_test')),
    owner_id      TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    revoked_at    INTEGER,
    replaced_by   TEXT
);
CREATE INDEX opaque_api_keys_owner ON opaque_api_keys (owner_id, created_at);
CREATE INDEX opaque_api_keys_expires ON opaque_api_keys (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE opaque_refresh_families (
    id                  TEXT    PRIMARY KEY,
    user_id             TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    current_token_id    TEXT    NOT NULL,
    rotated_at          INTEGER,
    revoked_at          INTEGER,
    revoke_reason       TEXT
);
CREATE INDEX opaque_refresh_families_user ON opaque_refresh_families (user_id, created_at);
CREATE INDEX opaque_refresh_families_absolute ON opaque_refresh_families (absolute_expires_at);
CREATE INDEX opaque_refresh_families_idle ON opaque_refresh_families (idle_expires_at);

CREATE TABLE opaque_refresh_tokens (
    id               TEXT    PRIMARY KEY,
    family_id        TEXT    NOT NULL REFERENCES opaque_refresh_families (id) ON DELETE CASCADE,
    token_hash       BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    pepper_id        TEXT,
    kind             TEXT    NOT NULL CHECK (kind = 'refresh'),
    generation       INTEGER NOT NULL,
    parent_id        TEXT,
    created_at       INTEGER NOT NULL,
    used_at          INTEGER,
    successor_id     TEXT,
    successor_sealed BLOB,
    grace_reuses     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX opaque_refresh_tokens_family ON opaque_refresh_tokens (family_id);

CREATE TABLE opaque_one_time_tokens (
    id          TEXT    PRIMARY KEY,
    token_hash  BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    pepper_id   TEXT,
    kind        TEXT    NOT NULL CHECK (kind IN ('email_verification', 'password_reset')),
    user_id     TEXT    NOT NULL,
    data        TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX opaque_one_time_tokens_user ON opaque_one_time_tokens (user_id, kind);
CREATE INDEX opaque_one_time_tokens_expires ON opaque_one_time_tokens (expires_at);

CREATE TABLE opaque_issue_limits (
    user_id        TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    last_issued_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind)
);

CREATE TABLE opaque_sessions (
    id                  TEXT    PRIMARY KEY,
    token_hash          BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    pepper_id           TEXT,
    kind                TEXT    NOT NULL CHECK (kind = 'session'),
    user_id             TEXT    NOT NULL,
    data                TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL
);
CREATE INDEX opaque_sessions_user ON opaque_sessions (user_id, created_at);
CREATE INDEX opaque_sessions_idle ON opaque_sessions (idle_expires_at);
CREATE INDEX opaque_sessions_absolute ON opaque_sessions (absolute_expires_at);

-- token-opaque schema, version 2 (PostgreSQL): the key table.
-- Every key a deployment signs, encrypts or hashes with, wrapped: `wrapped_dek` is the
-- row's data key as a PASERK `k4.local-wrap.pie` under the key-encryption key named by
-- `kek_id`; `sealed` is the key material encrypted under that data key, bound to the
-- row's identity. `namespace` separates the keys of deployments sharing a database. No column holds plaintext secret material. Times are Unix seconds;
-- the state of a key at a time is read from them, so every process switches at once.

CREATE TABLE tessera_keys (
    kid          TEXT    PRIMARY KEY,
    namespace    TEXT    NOT NULL,
    job          TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    generation   BIGINT NOT NULL CHECK (generation >= 1),
    kek_id       TEXT    NOT NULL,
    wrapped_dek  TEXT    NOT NULL,
    sealed       TEXT    NOT NULL,
    public_key   TEXT,
    created_at   BIGINT  NOT NULL,
    activates_at BIGINT  NOT NULL,
    retires_at   BIGINT,
    revoked_at   BIGINT,
    UNIQUE (namespace, job, generation)
);

-- token-opaque schema, version 3: a refresh family may be bound to a client key
-- (DPoP, RFC 9449): `jkt` is the RFC 7638 thumbprint of that key, and every rotation
-- must prove possession of it. NULL: a bearer family.

ALTER TABLE opaque_refresh_families ADD COLUMN jkt TEXT;

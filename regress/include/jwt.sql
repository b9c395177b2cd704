-- Included by auth.sql and forgery.sql (psql \i, relative to the repository root, where make runs).
-- base64url without padding, both ways, and an HS256 JWT made in SQL (pgcrypto's hmac).
CREATE OR REPLACE FUNCTION b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT translate(encode(b, 'base64'), E'+/=\n', '-_') $$;
CREATE OR REPLACE FUNCTION b64url_decode(t text) RETURNS bytea LANGUAGE sql IMMUTABLE
    AS $$ SELECT decode(rpad(translate(t, '-_', '+/'), (length(t) + 3) / 4 * 4, '='), 'base64') $$;
CREATE OR REPLACE FUNCTION jwt_hs256(header text, payload text, key bytea) RETURNS text LANGUAGE sql
    AS $$ SELECT s || '.' || b64url(hmac(convert_to(s, 'UTF8'), key, 'sha256'))
            FROM (SELECT b64url(convert_to(header, 'UTF8')) || '.' || b64url(convert_to(payload, 'UTF8'))) t(s) $$;

-- Single-flight refresh across processes: a lease (lease_until, lease_owner) is taken
-- before calling a platform and released after storing the result; an expired lease
-- can be taken over, so a killed process loses nothing.
alter table oauth_connections add column lease_owner text;

-- Consecutive invalid_grant answers to refreshes (Bing answers spurious ones).
alter table oauth_connections add column invalid_grant_streak integer not null default 0;

-- Tokens without expiry are validated periodically; connections that cannot be
-- refreshed are warned about once before they expire.
alter table oauth_connections add column last_validated_at timestamptz;
alter table oauth_connections add column expiry_warned_at timestamptz;

-- Grants a callback obtained and the application has not confirmed yet (OAUTH_CONFIRMATION=
-- required): the tokens, sealed as a connection's are but bound to this row (their associated
-- data names it), wait for the application's back end to confirm them for the user who
-- completed the flow. No read of connections sees them: they are not connected, not refreshed,
-- not handed out. A row is deleted when its grant is confirmed (the connection is stored in the
-- same transaction), refused or expired (the grant is then revoked at the platform).
create table oauth_pending_grants (
  id uuid primary key,
  -- SHA-256 of the one-time confirmation code; the code itself is only ever in the browser's redirect.
  confirmation_hash bytea not null unique,
  -- The user the flow was started for.
  user_id text not null,
  platform text not null,
  account_id text not null default '',
  access_token bytea not null,
  refresh_token bytea,
  key_id text not null,
  token_type text,
  scope text,
  expires_at timestamptz,
  provider_data jsonb not null default '{}'::jsonb,
  -- When the flow began (the authorisation request's creation), for the connection-time metric.
  flow_started_at timestamptz not null,
  -- The code is good until the authorisation request would have expired (10 minutes).
  confirm_by timestamptz not null,
  created_at timestamptz not null
);

create index oauth_pending_grants_confirm_by on oauth_pending_grants (confirm_by);

-- A grant confirmed for another user than the one its flow was started for is refused and revoked.
alter table oauth_events drop constraint oauth_events_kind_check;
alter table oauth_events add constraint oauth_events_kind_check check (kind in (
  'connected', 'refreshed', 'refresh_failed', 'needs_reauth', 'expiring_soon',
  'disconnected', 'revoked', 'recovered', 'confirmation_refused'
));

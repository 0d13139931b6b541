-- Connections: one row per (user, platform, account); tokens are AES-256-GCM ciphertexts
-- sealed with the key named by key_id.
create table oauth_connections (
  id uuid primary key default gen_random_uuid(),
  user_id text not null,
  platform text not null,
  account_id text not null default '',
  status text not null default 'active'
    check (status in ('active', 'needs_reauth', 'revoked', 'disconnected')),
  access_token bytea,
  refresh_token bytea,
  key_id text,
  token_type text,
  scope text,
  expires_at timestamptz,
  provider_data jsonb not null default '{}'::jsonb,
  refresh_failures integer not null default 0,
  last_refresh_error text,
  last_refreshed_at timestamptz,
  next_attempt_at timestamptz,
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint oauth_connections_identity unique (user_id, platform, account_id),
  constraint oauth_connections_tokens_sealed check (access_token is null or key_id is not null)
);

create index oauth_connections_user_id on oauth_connections (user_id);

-- The monitor's claim scans active connections by expiry.
create index oauth_connections_active_expiry on oauth_connections (expires_at)
  where status = 'active';

-- Authorisation requests in flight: the state is stored only as its SHA-256.
create table oauth_states (
  state_hash bytea primary key,
  user_id text not null,
  platform text not null,
  code_verifier bytea,
  key_id text,
  redirect_uri text not null,
  return_to text,
  mode text not null default 'redirect' check (mode in ('redirect', 'popup')),
  expires_at timestamptz not null,
  consumed_at timestamptz,
  created_at timestamptz not null default now()
);

create index oauth_states_expires_at on oauth_states (expires_at);

-- The audit trail and alert feed; never holds a token.
create table oauth_events (
  id bigint generated always as identity primary key,
  connection_id uuid references oauth_connections (id) on delete set null,
  user_id text not null,
  platform text not null,
  kind text not null check (kind in (
    'connected', 'refreshed', 'refresh_failed', 'needs_reauth', 'expiring_soon',
    'disconnected', 'revoked', 'recovered'
  )),
  detail jsonb not null default '{}'::jsonb,
  at timestamptz not null default now()
);

create index oauth_events_user_newest on oauth_events (user_id, id desc);

-- Connect sessions: a user's pass to the hosted connect page, made by the application's back
-- end. The secret travels only in the page URL's fragment; it is stored as its SHA-256.
create table connect_sessions (
  id uuid primary key,
  secret_hash bytea not null unique,
  user_id text not null,
  -- The platforms the page offers, in order.
  platforms text[] not null,
  return_to text,
  allow_disconnect boolean not null default false,
  expires_at timestamptz not null,
  created_at timestamptz not null
);

create index connect_sessions_expires_at on connect_sessions (expires_at);

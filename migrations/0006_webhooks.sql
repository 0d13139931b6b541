-- Webhooks: the events that change a connection's state, pushed to the application's endpoints
-- through an outbox. A delivery row is written by a trigger on oauth_events, in the statement
-- that stores the event: an event is never stored without its deliveries, nor announced
-- without being stored.

-- A connection's transient refresh failures: since when they have lasted, and whether
-- connection.refresh_failing was sent for them (once per streak; recovered only after it).
alter table oauth_connections add column failing_since timestamptz;
alter table oauth_connections add column failing_announced boolean not null default false;

alter table oauth_events drop constraint oauth_events_kind_check;
alter table oauth_events add constraint oauth_events_kind_check check (kind in (
  'connected', 'refreshed', 'refresh_failed', 'needs_reauth', 'expiring_soon',
  'disconnected', 'revoked', 'recovered', 'confirmation_refused', 'imported', 'refresh_failing'
));

-- The endpoints of the configuration (WEBHOOK_URL, WEBHOOK_<NAME>_URL), written by every process
-- that delivers webhooks when it starts. Secrets are not stored: they stay in the configuration.
create table webhook_endpoints (
  name text primary key,
  url text not null,
  -- The event types sent there; null: all of them.
  events text[],
  active boolean not null default true,
  updated_at timestamptz not null default now()
);

create table webhook_deliveries (
  id bigint generated always as identity primary key,
  -- The webhook-id header and the payload's id: the same on every attempt and every endpoint.
  message_id text not null,
  endpoint text not null,
  type text not null,
  -- The exact bytes posted, kept as text so that every attempt sends the same body.
  body text not null,
  user_id text not null,
  platform text not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  lease_until timestamptz,
  lease_owner text,
  last_attempt_at timestamptz,
  -- The HTTP status of the last attempt, null when none came back (timeout, refused).
  last_response_status integer,
  last_error text,
  -- When the event was stored: deliveries' latency is measured from here.
  created_at timestamptz not null default now(),
  -- When the delivery was made or given up.
  finished_at timestamptz
-- Room on each page for the claim's update of the lease columns, which no index holds: it stays
-- a heap-only update.
) with (fillfactor = 80);

-- The workers' claim: due deliveries of one endpoint.
create index webhook_deliveries_due on webhook_deliveries (endpoint, next_attempt_at, id) where status = 'pending';
-- GET /v1/webhooks/deliveries?status=pending|failed, newest first, and the retention of failed
-- ones. Delivered rows (nearly all of them) are read in id order, through the primary key: a
-- delivery made writes no entry but the primary key's.
create index webhook_deliveries_open on webhook_deliveries (status, id) where status <> 'delivered';

-- The webhook type of a stored event, null for those not pushed (refreshed, refresh_failed; a
-- recovered event that follows no alert).
create function webhook_type(kind text, detail jsonb) returns text language sql immutable as $$
  select case kind
    when 'connected' then 'connection.connected'
    when 'confirmation_refused' then 'connection.confirmation_refused'
    when 'imported' then 'connection.imported'
    when 'needs_reauth' then 'connection.needs_reauth'
    when 'expiring_soon' then 'connection.expiring_soon'
    when 'revoked' then 'connection.revoked'
    when 'disconnected' then 'connection.disconnected'
    when 'refresh_failing' then 'connection.refresh_failing'
    when 'recovered' then case when coalesce((detail ->> 'alerted')::boolean, false) then 'connection.recovered' end
  end
$$;

-- The connection's status as the payload gives it.
create function webhook_status(status text, unverified boolean) returns text language sql immutable as $$
  select case
    when status is null then 'not_connected'
    when status = 'active' and unverified then 'unverified'
    when status = 'active' then 'connected'
    else status
  end
$$;

-- One delivery per (event, active endpoint subscribed to its type), in the inserting statement.
-- The payload never holds a token, code or secret: events never do.
create function webhook_announce() returns trigger language plpgsql as $$
begin
  insert into webhook_deliveries (message_id, endpoint, type, body, user_id, platform)
  select 'evt_' || e.id, w.name, t.type,
    json_build_object(
      'type', t.type,
      'id', 'evt_' || e.id,
      'timestamp', to_char(e.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'data', json_build_object(
        'user_id', e.user_id,
        'platform', e.platform,
        'account_id', coalesce(c.account_id, e.detail ->> 'account_id', ''),
        'status', webhook_status(c.status, c.unverified),
        'reason', e.detail ->> 'reason',
        'details', e.detail - 'reason' - 'alerted' - 'account_id'
      )
    )::text,
    e.user_id, e.platform
  from added e
  cross join lateral (select webhook_type(e.kind, e.detail) as type) t
  join webhook_endpoints w on w.active and (w.events is null or t.type = any (w.events))
  left join oauth_connections c on c.id = e.connection_id
  where t.type is not null
  order by e.id, w.name;
  if found then
    perform pg_notify('webhook_deliveries', '');
  end if;
  return null;
end
$$;

create trigger oauth_events_announce after insert on oauth_events
  referencing new table as added for each statement execute function webhook_announce();

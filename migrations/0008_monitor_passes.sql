-- The last monitor pass of any process, for `status`: when it ended and what it did.
create table monitor_passes (
  id smallint primary key default 1 check (id = 1),
  finished_at timestamptz not null,
  duration_ms integer not null,
  report jsonb not null
);

-- Storage stays bounded whatever a caller does: live authorisation requests are capped per
-- (user, platform), and a cleanup deletes expired requests and old events in batches.
-- `if not exists`: on a large table, build these first with `create index concurrently` under
-- the same names (the migrator runs in a transaction, which cannot, and would block writes meanwhile).

-- The cap reads a pair's live requests at every authorize; without it, every live request of
-- every user is read (an index scan on expires_at).
create index if not exists oauth_states_pending on oauth_states (user_id, platform, created_at)
  where consumed_at is null;

-- EVENTS_RETENTION: without it, a cleanup pass with nothing left to delete reads the whole table.
create index if not exists oauth_events_at on oauth_events (at);

-- REFRESH_EVENTS_RETENTION: refreshed events are most rows and kept shortest; through the index
-- above, each pass would read every other event younger than EVENTS_RETENTION to find none.
create index if not exists oauth_events_refreshed_at on oauth_events (at) where kind = 'refreshed';

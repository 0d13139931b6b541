-- Connections brought in from elsewhere (PUT .../import, the legacy backfill).
-- unverified: an imported access token that neither expires as far as we know nor comes with a
-- refresh token, not yet checked with the platform. It is not reported connected until a monitor
-- pass has validated it (the validation claim takes rows whose last_validated_at is null).
alter table oauth_connections add column unverified boolean not null default false;

alter table oauth_events drop constraint oauth_events_kind_check;
alter table oauth_events add constraint oauth_events_kind_check check (kind in (
  'connected', 'refreshed', 'refresh_failed', 'needs_reauth', 'expiring_soon',
  'disconnected', 'revoked', 'recovered', 'confirmation_refused', 'imported'
));

-- The delivery outbox: messages to outside services (Telegram, GitHub check runs), queued in the transaction of their event.

-- A channel an API process can send through. Events get delivery rows only for channels some
-- process has marked within the last few minutes (seen_at), so a channel nobody sends through
-- collects nothing. Each process refreshes the rows of the channels it has configured.
CREATE TABLE delivery_channels (
  channel text PRIMARY KEY,
  event_types text[] NOT NULL DEFAULT '{}',
  -- Where its messages go (a Telegram chat id); deliveries copy it, and it keys the rate limit.
  target text NOT NULL DEFAULT '',
  seen_at timestamptz NOT NULL DEFAULT now()
);

-- One message to send, once: (channel, dedupe_key) is unique, so an event ('event:<id>') or any
-- other occasion (a day's summary, a check run) queues at most one row per channel.
CREATE TABLE deliveries (
  id bigserial PRIMARY KEY,
  channel text NOT NULL,
  dedupe_key text NOT NULL,
  event_id bigint,
  target text NOT NULL DEFAULT '',
  payload jsonb NOT NULL DEFAULT '{}',
  -- pending: waits for next_attempt_at; sending: claimed until next_attempt_at (a lapsed claim is
  -- claimed again); sent, skipped (policy said no; result.reason), failed (refused for good).
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'sending', 'sent', 'skipped', 'failed')),
  attempts int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  last_error_at timestamptz,
  -- What the service answered (a message id, a check run id), or why it was skipped.
  result jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  UNIQUE (channel, dedupe_key)
);

-- Claiming: due rows in time order; a target's in-flight row.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at, id) WHERE status IN ('pending', 'sending');
CREATE INDEX deliveries_target_idx ON deliveries (channel, target, next_attempt_at)
  WHERE status IN ('pending', 'sending');
-- Health (GET /api/integrations): last success, last error per channel.
CREATE INDEX deliveries_sent_idx ON deliveries (channel, sent_at) WHERE status = 'sent';
CREATE INDEX deliveries_error_idx ON deliveries (channel, last_error_at) WHERE last_error_at IS NOT NULL;
-- Cleanup of finished rows by age.
CREATE INDEX deliveries_finished_idx ON deliveries (updated_at) WHERE status IN ('sent', 'skipped', 'failed');

-- A target (chat) is not sent to before paused_until: the per-target rate limit and a service's
-- Retry-After, shared by every API process.
CREATE TABLE delivery_targets (
  channel text NOT NULL,
  target text NOT NULL,
  paused_until timestamptz NOT NULL,
  PRIMARY KEY (channel, target)
);

-- One notification per statement that queued deliveries (none when it queued nothing): wakes the
-- delivery loops at once.
CREATE FUNCTION devart_deliveries_notify() RETURNS trigger
  LANGUAGE plpgsql
  AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM queued) THEN
    PERFORM pg_notify('devart_deliveries', '');
  END IF;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries REFERENCING NEW TABLE AS queued
  FOR EACH STATEMENT EXECUTE FUNCTION devart_deliveries_notify();

-- No policy: only the service connection (table owner) reaches them.
ALTER TABLE delivery_channels ENABLE ROW LEVEL SECURITY;
ALTER TABLE deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_targets ENABLE ROW LEVEL SECURITY;

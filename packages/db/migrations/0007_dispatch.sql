-- Dispatch: the transactional outbox, task leases and attempt numbers, and the attempt history.
ALTER TABLE tasks
  ADD COLUMN attempt int NOT NULL DEFAULT 0,
  ADD COLUMN lease_expires_at timestamptz,
  ADD COLUMN next_attempt_at timestamptz,
  ADD COLUMN step_key text;

COMMENT ON COLUMN tasks.attempt IS 'Number of the latest attempt published to agents (messages carry it; starts are fenced on it).';
COMMENT ON COLUMN tasks.lease_expires_at IS 'While IN_PROGRESS: the holder must heartbeat before this time or lose the task.';

CREATE INDEX tasks_lease_expiry_idx ON tasks (lease_expires_at) WHERE status = 'IN_PROGRESS';

CREATE TABLE task_attempts (
  task_id uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
  attempt int NOT NULL,
  agent_id uuid REFERENCES agents(id),
  started_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  outcome text CHECK (outcome IN ('DONE', 'FAILED', 'LEASE_EXPIRED', 'CANCELLED')),
  error text,
  PRIMARY KEY (task_id, attempt)
);

CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  topic text NOT NULL,
  payload jsonb NOT NULL,
  available_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);

CREATE INDEX outbox_due_idx ON outbox (available_at, id) WHERE sent_at IS NULL;

-- One notification per statement, however many rows it queued: wakes the relays at once.
CREATE FUNCTION devart_outbox_notify() RETURNS trigger
  LANGUAGE plpgsql
  AS $fn$ BEGIN PERFORM pg_notify('devart_outbox', ''); RETURN NULL; END $fn$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION devart_outbox_notify();

-- The routing key (and queue name) of a task: tasks.todo, or tasks.todo.<capability>.
CREATE FUNCTION devart_task_topic(capability text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $fn$ SELECT CASE WHEN capability IS NULL THEN 'tasks.todo' ELSE 'tasks.todo.' || capability END $fn$;

-- The devart.task.v1 message, built in one place for every statement that enqueues a task.
CREATE FUNCTION devart_task_message(
  task_id uuid, attempt int, capability text, title text, payload jsonb, workflow_run_id uuid
) RETURNS jsonb
  LANGUAGE sql STABLE
  AS $fn$
    SELECT jsonb_build_object(
      'type', 'devart.task.v1', 'task_id', task_id, 'attempt', attempt, 'capability', capability,
      'title', title, 'payload', payload, 'workflow_run_id', workflow_run_id,
      'enqueued_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  $fn$;

ALTER TABLE task_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON task_attempts TO authenticated;
CREATE POLICY task_attempts_read ON task_attempts FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));
-- outbox: no policy, so only the service connection (table owner) reaches it.

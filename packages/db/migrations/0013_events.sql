-- The lifecycle event log: one append-only row per state change, written in the changing transaction.
-- Ids are allocated in commit order (appendEvents takes an advisory lock just before COMMIT), so
-- a reader resuming with `id > N` never misses a row committed later with a smaller id.
CREATE TABLE events (
  id bigserial PRIMARY KEY,
  type text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  task_id uuid,
  workflow_run_id uuid,
  agent_id uuid,
  sandbox_id uuid,
  item_id uuid,
  data jsonb NOT NULL DEFAULT '{}'
);

-- Retention deletes by age.
CREATE INDEX events_at_idx ON events (at);
-- Filtered history and resumption: one subject's events in id order.
CREATE INDEX events_task_id_idx ON events (task_id, id) WHERE task_id IS NOT NULL;
CREATE INDEX events_workflow_run_id_idx ON events (workflow_run_id, id) WHERE workflow_run_id IS NOT NULL;
CREATE INDEX events_agent_id_idx ON events (agent_id, id) WHERE agent_id IS NOT NULL;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON events TO authenticated;
CREATE POLICY events_read ON events FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));

-- GitHub: webhook deliveries already received (a replay starts nothing), and what is written back to GitHub about the runs they started.
CREATE TABLE github_deliveries (
  delivery_id text PRIMARY KEY,
  event text NOT NULL,
  action text,
  repository text,
  run_ids uuid[] NOT NULL DEFAULT '{}',
  received_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE github_deliveries IS 'X-GitHub-Delivery ids already received and the runs each started; the primary key decides a replay, across replicas.';

-- Forgetting old deliveries by age.
CREATE INDEX github_deliveries_received_at_idx ON github_deliveries (received_at);

-- The workflows a delivery may start, found without reading every definition.
CREATE INDEX workflows_triggers_idx ON workflows USING gin ((definition -> 'triggers') jsonb_path_ops);

-- A run a delivery started while the GitHub App was configured: where its check run and comment go,
-- and what GitHub has been told so far (filled in by the delivery loop's github channel).
CREATE TABLE github_runs (
  workflow_run_id uuid PRIMARY KEY REFERENCES workflow_runs (id) ON DELETE CASCADE,
  repository text NOT NULL,
  head_sha text NOT NULL,
  pull_request_number int,
  workflow_name text NOT NULL,
  check_run boolean NOT NULL,
  comment boolean NOT NULL,
  check_run_id bigint,
  check_run_completed_at timestamptz,
  comment_id bigint,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- When a run linked to GitHub ends (COMPLETED, FAILED, CANCELLED, by whatever path), the same
-- transaction queues its check run's completion and, when the workflow opted in, its pull request
-- comment on the 'github' channel; the target is the repository, so one repository's updates go out
-- one at a time and in order.
CREATE FUNCTION devart_github_run_ended() RETURNS trigger
  LANGUAGE plpgsql
  AS $fn$
BEGIN
  INSERT INTO deliveries (channel, dedupe_key, target, payload)
  SELECT 'github', k.kind || ':' || g.workflow_run_id || k.suffix, lower(g.repository),
         jsonb_build_object('kind', k.kind, 'workflow_run_id', g.workflow_run_id)
  FROM github_runs g
  CROSS JOIN LATERAL (VALUES ('check_run', ':end', g.check_run), ('comment', '', g.comment)) AS k(kind, suffix, wanted)
  WHERE g.workflow_run_id = NEW.id AND k.wanted
  ON CONFLICT (channel, dedupe_key) DO NOTHING;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER workflow_runs_github_ended AFTER UPDATE OF status ON workflow_runs
  FOR EACH ROW WHEN (OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING')
  EXECUTE FUNCTION devart_github_run_ended();

-- No policy: only the service connection (table owner) reaches them.
ALTER TABLE github_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE github_runs ENABLE ROW LEVEL SECURITY;

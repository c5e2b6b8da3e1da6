-- Workflow runs: the definition each run follows, idempotent triggers, and atomic completion and failure.
ALTER TABLE workflow_runs
  ADD COLUMN definition jsonb,
  ADD COLUMN idempotency_key text,
  ADD COLUMN created_by uuid;

COMMENT ON COLUMN workflow_runs.definition IS 'The steps this run follows, copied at trigger time.';

CREATE UNIQUE INDEX workflow_runs_idempotency_idx ON workflow_runs (workflow_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

CREATE INDEX tasks_run_status_idx ON tasks (workflow_run_id, status) WHERE workflow_run_id IS NOT NULL;

-- Completion detection (the seed's "atomic workflow completion detection"): under the run's row
-- lock, a run whose every task is DONE becomes COMPLETED once, with the exact numeric sum of costs.
CREATE FUNCTION devart_complete_workflow_run(run uuid) RETURNS text
  LANGUAGE plpgsql
  AS $fn$
DECLARE
  current text;
BEGIN
  SELECT status INTO current FROM workflow_runs WHERE id = run FOR UPDATE;
  IF current IS DISTINCT FROM 'RUNNING' THEN
    RETURN current;
  END IF;
  IF EXISTS (SELECT 1 FROM tasks WHERE workflow_run_id = run AND status <> 'DONE') THEN
    RETURN 'RUNNING';
  END IF;
  UPDATE workflow_runs
     SET status = 'COMPLETED', end_time = now(),
         total_cost = (SELECT coalesce(sum(cost), 0) FROM tasks WHERE workflow_run_id = run)
   WHERE id = run;
  RETURN 'COMPLETED';
END
$fn$;

-- A run ends FAILED (a step was quarantined) or CANCELLED: its steps that had not run are cancelled.
CREATE FUNCTION devart_end_workflow_run(run uuid, final_status text) RETURNS text
  LANGUAGE plpgsql
  AS $fn$
DECLARE
  current text;
BEGIN
  SELECT status INTO current FROM workflow_runs WHERE id = run FOR UPDATE;
  IF current IS DISTINCT FROM 'RUNNING' THEN
    RETURN current;
  END IF;
  UPDATE task_attempts a SET ended_at = now(), outcome = 'CANCELLED'
    FROM tasks t
   WHERE t.workflow_run_id = run AND t.status = 'IN_PROGRESS' AND a.task_id = t.id AND a.attempt = t.attempt
     AND a.ended_at IS NULL;
  UPDATE tasks SET status = 'CANCELLED', agent_id = NULL, lease_expires_at = NULL, completed_at = now(),
                   updated_at = now()
   WHERE workflow_run_id = run AND status IN ('PENDING', 'TODO', 'IN_PROGRESS');
  UPDATE workflow_runs
     SET status = final_status, end_time = now(),
         total_cost = (SELECT coalesce(sum(cost), 0) FROM tasks WHERE workflow_run_id = run)
   WHERE id = run;
  RETURN final_status;
END
$fn$;

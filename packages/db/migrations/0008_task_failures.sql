-- Failure handling: a task's own backoff policy, and quick access to what is quarantined or due.
ALTER TABLE tasks ADD COLUMN retry_backoff jsonb;

COMMENT ON COLUMN tasks.retry_backoff IS 'Per-task retry backoff {base_ms, cap_ms}; null = the platform defaults.';

ALTER TABLE task_attempts ADD COLUMN details jsonb;

CREATE INDEX task_attempts_agent_idx ON task_attempts (agent_id, started_at);

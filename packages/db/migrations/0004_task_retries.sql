-- Phase 10, Task 2: the seed's retry columns on tasks, verbatim.
ALTER TABLE tasks
  ADD COLUMN retry_count INT DEFAULT 0,
  ADD COLUMN max_retries INT DEFAULT 3,
  ADD COLUMN last_error TEXT;

COMMENT ON COLUMN tasks.retry_count IS 'The number of times this task has been attempted.';
COMMENT ON COLUMN tasks.max_retries IS 'The maximum number of retries allowed for this task.';
COMMENT ON COLUMN tasks.last_error IS 'The error message from the last failed attempt.';

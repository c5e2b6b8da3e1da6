-- Lets the reconciler find TODO tasks untouched for a while without reading every waiting task.
CREATE INDEX tasks_todo_updated_at_idx ON tasks (updated_at) WHERE status = 'TODO';

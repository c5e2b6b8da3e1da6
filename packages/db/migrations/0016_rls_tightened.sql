-- Direct clients (authenticated) write only what the API lets users write: owned marketplace names, no task or run state.

-- The API's ownership rule for a marketplace name (publishItem): the first version of a name fixes
-- its type and its publisher; later versions need the same type, and the same publisher or an admin.
-- It takes the API's own per-name lock, so a direct publish and an API publish of one new name are
-- serialized and the second sees the first. VOLATILE, so under READ COMMITTED the lookup after the
-- lock sees what the lock's holder committed. SECURITY DEFINER: the owner reads the name's first
-- version whatever the caller's read policy.
CREATE FUNCTION public.devart_may_publish(item_name text, new_item_type text) RETURNS boolean
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = ''
  AS $fn$
DECLARE
  owner_type text;
  owner_id uuid;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('devart.marketplace:' || item_name));
  SELECT m.item_type, m.publisher_id INTO owner_type, owner_id
    FROM public.marketplace_items m WHERE m.name = item_name ORDER BY m.created_at, m.id LIMIT 1;
  IF NOT FOUND THEN
    RETURN true;
  END IF;
  RETURN owner_type = new_item_type
     AND (public.devart_role() = 'admin' OR owner_id IS NOT DISTINCT FROM auth.uid());
END
$fn$;

REVOKE EXECUTE ON FUNCTION public.devart_may_publish(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.devart_may_publish(text, text) TO authenticated;

ALTER POLICY marketplace_items_publish ON marketplace_items TO authenticated
  WITH CHECK (
    public.devart_role() IN ('supervisor', 'admin') AND publisher_id = auth.uid()
    AND public.devart_may_publish(name, item_type)
  );

-- Tasks: users create them with the fields of POST /api/tasks (CreateTaskBody) and their own id.
-- No route edits a task: cancel and requeue are state transitions with attempts, outbox rows and
-- events, which only the service connection performs. So no status, result, cost, agent, attempt,
-- lease, retry, run or step column is writable, on insert or update.
REVOKE INSERT, UPDATE ON tasks FROM authenticated;
GRANT INSERT (title, description, capability, payload, priority, max_retries, retry_backoff, created_by)
  ON tasks TO authenticated;
DROP POLICY tasks_supervisor_update ON tasks;

-- Workflows: POST /api/workflows takes a name, a description and the definition; nothing edits a
-- stored workflow, and marketplace provenance is set only by an install.
REVOKE INSERT, UPDATE ON workflows FROM authenticated;
GRANT INSERT (name, description, definition, created_by) ON workflows TO authenticated;
DROP POLICY workflows_supervisor_update ON workflows;

-- Runs: a trigger creates a run together with its step tasks and its copy of the definition, and
-- only the platform moves a run's status and cost. A bare row would be a run that never runs.
REVOKE INSERT, UPDATE ON workflow_runs FROM authenticated;
DROP POLICY workflow_runs_supervisor_insert ON workflow_runs;
DROP POLICY workflow_runs_supervisor_update ON workflow_runs;

-- Agents: an admin registers one with the fields POST /api/agents stores, and revokes it
-- (DELETE /api/agents/{id}); status and heartbeat are the agent's, and a key hash is never
-- rewritten (that would hand the admin a working key of an existing agent).
REVOKE INSERT, UPDATE ON agents FROM authenticated;
GRANT INSERT (name, capabilities, api_key_hash, created_by) ON agents TO authenticated;
GRANT UPDATE (revoked_at) ON agents TO authenticated;

-- Row-level security on every table, keyed on auth.uid() and the verified role claim.
CREATE INDEX workflow_runs_workflow_id_start_time_idx ON workflow_runs (workflow_id, start_time);
CREATE INDEX tasks_workflow_run_id_idx ON tasks (workflow_run_id) WHERE workflow_run_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE ON agents, tasks, workflows, workflow_runs, marketplace_items TO authenticated;
-- The API key hash never leaves the service connection, not even to admins.
REVOKE SELECT ON agents FROM authenticated;
GRANT SELECT (id, name, capabilities, status, last_heartbeat_at, created_by, created_at, revoked_at)
  ON agents TO authenticated;

ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE marketplace_items ENABLE ROW LEVEL SECURITY;

CREATE POLICY agents_read ON agents FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));
CREATE POLICY agents_admin_insert ON agents FOR INSERT TO authenticated
  WITH CHECK (public.devart_role() = 'admin' AND created_by = auth.uid());
CREATE POLICY agents_admin_update ON agents FOR UPDATE TO authenticated
  USING (public.devart_role() = 'admin') WITH CHECK (public.devart_role() = 'admin');

CREATE POLICY tasks_read ON tasks FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));
CREATE POLICY tasks_supervisor_insert ON tasks FOR INSERT TO authenticated
  WITH CHECK (public.devart_role() IN ('supervisor', 'admin') AND created_by = auth.uid());
CREATE POLICY tasks_supervisor_update ON tasks FOR UPDATE TO authenticated
  USING (public.devart_role() IN ('supervisor', 'admin'))
  WITH CHECK (public.devart_role() IN ('supervisor', 'admin'));

CREATE POLICY workflows_read ON workflows FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));
CREATE POLICY workflows_supervisor_insert ON workflows FOR INSERT TO authenticated
  WITH CHECK (public.devart_role() IN ('supervisor', 'admin') AND created_by = auth.uid());
CREATE POLICY workflows_supervisor_update ON workflows FOR UPDATE TO authenticated
  USING (public.devart_role() IN ('supervisor', 'admin'))
  WITH CHECK (public.devart_role() IN ('supervisor', 'admin'));

CREATE POLICY workflow_runs_read ON workflow_runs FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));
CREATE POLICY workflow_runs_supervisor_insert ON workflow_runs FOR INSERT TO authenticated
  WITH CHECK (public.devart_role() IN ('supervisor', 'admin'));
CREATE POLICY workflow_runs_supervisor_update ON workflow_runs FOR UPDATE TO authenticated
  USING (public.devart_role() IN ('supervisor', 'admin'))
  WITH CHECK (public.devart_role() IN ('supervisor', 'admin'));

CREATE POLICY marketplace_items_read ON marketplace_items FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));
CREATE POLICY marketplace_items_publish ON marketplace_items FOR INSERT TO authenticated
  WITH CHECK (public.devart_role() IN ('supervisor', 'admin') AND publisher_id = auth.uid());

-- auth.users only where devart created it; Supabase manages its own.
DO $$
BEGIN
  IF obj_description('auth.users'::regclass, 'pg_class') LIKE 'devart:owned%' THEN
    ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
    GRANT SELECT ON auth.users TO authenticated;
    CREATE POLICY users_read_self ON auth.users FOR SELECT TO authenticated USING (id = auth.uid());
  END IF;
END
$$;

-- Sandboxes: every isolated environment an agent asked for, from request to termination.
CREATE TABLE sandboxes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  agent_id uuid NOT NULL REFERENCES agents (id),
  task_id uuid NOT NULL REFERENCES tasks (id),
  provider text NOT NULL,
  external_id text,
  status text NOT NULL DEFAULT 'PROVISIONING'
    CHECK (status IN ('PROVISIONING', 'RUNNING', 'TERMINATED', 'FAILED')),
  spec jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  terminated_at timestamptz,
  termination_reason text
);

COMMENT ON TABLE sandboxes IS 'Isolated environments provisioned for tasks; terminated when their task leaves IN_PROGRESS or their TTL passes.';
COMMENT ON COLUMN sandboxes.external_id IS 'The provider''s id: a Pod name, or a local workspace name.';

CREATE UNIQUE INDEX sandboxes_external_idx ON sandboxes (provider, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX sandboxes_live_idx ON sandboxes (task_id) WHERE status IN ('PROVISIONING', 'RUNNING');
CREATE INDEX sandboxes_expiry_idx ON sandboxes (expires_at) WHERE status IN ('PROVISIONING', 'RUNNING');

ALTER TABLE sandboxes ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON sandboxes TO authenticated;
CREATE POLICY sandboxes_read ON sandboxes FOR SELECT TO authenticated
  USING (public.devart_role() IN ('viewer', 'supervisor', 'admin'));

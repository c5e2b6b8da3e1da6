-- The platform's tables as they stood before phase 10: agents, tasks and workflows.
CREATE TABLE agents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  capabilities text[] NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'IDLE' CHECK (status IN ('IDLE', 'BUSY', 'OFFLINE')),
  api_key_hash text NOT NULL UNIQUE,
  last_heartbeat_at timestamptz,
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

CREATE TABLE tasks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  title text NOT NULL,
  description text,
  capability text,
  payload jsonb NOT NULL DEFAULT '{}'::jsonb,
  priority int NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'TODO'
    CHECK (status IN ('PENDING', 'TODO', 'IN_PROGRESS', 'DONE', 'QUARANTINED', 'CANCELLED')),
  agent_id uuid REFERENCES agents(id),
  result jsonb,
  cost numeric,
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz
);

CREATE INDEX tasks_created_at_id_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status_idx ON tasks (status);
CREATE INDEX tasks_agent_id_idx ON tasks (agent_id) WHERE agent_id IS NOT NULL;

CREATE TABLE workflows (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  description text,
  definition jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now()
);

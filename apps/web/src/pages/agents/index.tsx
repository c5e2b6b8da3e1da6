import type { Agent } from '@devart/contracts';
import { useState } from 'react';
import { Link } from 'react-router';
import { DataState, ErrorMessage } from '../../components/data-state';
import { Confirm, Drawer } from '../../components/dialog';
import { PageHeader } from '../../components/layout';
import { StatusBadge } from '../../components/status-badge';
import { RelativeTime } from '../../components/time';
import { useCan } from '../../lib/auth';
import { shortId } from '../../lib/format';
import { useAgents, useCurrentTasks, useRevokeAgent } from './hooks';
import { RegisterAgentForm } from './register-agent';

function RevokeButton({ agent }: { agent: Agent }) {
  const revoke = useRevokeAgent();
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        type="button"
        className="button button-small button-danger"
        onClick={() => setOpen(true)}
        aria-label={`Revoke ${agent.name}`}
      >
        Revoke
      </button>
      <Confirm
        open={open}
        title={`Revoke ${agent.name}?`}
        confirmLabel={`Revoke ${agent.name}`}
        danger
        busy={revoke.isPending}
        onClose={() => setOpen(false)}
        onConfirm={() => revoke.mutate(agent.id, { onSuccess: () => setOpen(false) })}
      >
        <p>
          Its API key stops working at once (and its broker user is deleted). A task it holds is retried by
          another agent when its lease runs out. This cannot be undone: register a new agent instead.
        </p>
        {revoke.isError && <ErrorMessage error={revoke.error} title="Not revoked" />}
      </Confirm>
    </>
  );
}

function AgentTable({ agents }: { agents: readonly Agent[] }) {
  const current = useCurrentTasks();
  const canRevoke = useCan('agents.revoke');
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Agents</caption>
        <thead>
          <tr>
            <th scope="col">Agent</th>
            <th scope="col">Status</th>
            <th scope="col">Capabilities</th>
            <th scope="col">Last heartbeat</th>
            <th scope="col">Current task</th>
            {canRevoke && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {agents.map((agent) => {
            const task = current.get(agent.id);
            return (
              <tr key={agent.id} data-agent-id={agent.id}>
                <td className="wrap">
                  {agent.name}
                  <div className="muted">
                    <code title={agent.id}>{shortId(agent.id)}</code>
                  </div>
                </td>
                <td>
                  <StatusBadge status={agent.revoked_at ? 'REVOKED' : agent.status} />
                </td>
                <td>
                  {agent.capabilities.length === 0 ? (
                    <span className="muted">none</span>
                  ) : (
                    agent.capabilities.map((c) => (
                      <span key={c} className="chip">
                        {c}
                      </span>
                    ))
                  )}
                </td>
                <td>
                  <RelativeTime iso={agent.last_heartbeat_at} />
                </td>
                <td className="wrap">
                  {task ? (
                    <Link to={`/tasks/${task.id}`}>{task.title}</Link>
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
                {canRevoke && <td>{!agent.revoked_at && <RevokeButton agent={agent} />}</td>}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export default function AgentsPage() {
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const agents = useAgents({ includeRevoked });
  const canRegister = useCan('agents.create');
  const [registering, setRegistering] = useState(false);
  return (
    <>
      <PageHeader title="Agents">
        {canRegister && (
          <button type="button" className="button button-primary" onClick={() => setRegistering(true)}>
            Register agent
          </button>
        )}
      </PageHeader>
      <div className="filters">
        <label className="checkbox">
          <input
            type="checkbox"
            checked={includeRevoked}
            onChange={(e) => setIncludeRevoked(e.target.checked)}
          />{' '}
          Show revoked agents
        </label>
      </div>
      <DataState
        query={agents}
        label="agents"
        isEmpty={(d) => d.items.length === 0}
        empty={canRegister ? 'No agents yet: register one.' : 'No agents yet.'}
      >
        {(d) => <AgentTable agents={d.items} />}
      </DataState>
      {canRegister && (
        <Drawer open={registering} title="Register an agent" onClose={() => setRegistering(false)}>
          {registering && <RegisterAgentForm onDone={() => setRegistering(false)} />}
        </Drawer>
      )}
    </>
  );
}

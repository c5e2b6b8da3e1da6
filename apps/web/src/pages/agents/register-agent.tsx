import { CreateAgentBody, type CreatedAgent } from '@devart/contracts';
import { type FormEvent, useState } from 'react';
import { CopyButton } from '../../components/copy-button';
import { ErrorMessage } from '../../components/data-state';
import { useRegisterAgent } from './hooks';

/** `devart agent …` for a new agent; without a broker of its own (embedded mode) it cannot run outside. */
export function agentCommand(agent: CreatedAgent, origin: string): string | null {
  if (!agent.broker) return null;
  const capabilities = agent.capabilities.length > 0 ? agent.capabilities.join(',') : '<capability>';
  const prefix = agent.broker.amqp_prefix ? ` --prefix ${agent.broker.amqp_prefix}` : '';
  return `npx devart agent --capability ${capabilities} --api ${origin} --key ${agent.api_key} --amqp '${agent.broker.url}'${prefix}`;
}

function Secret({ label, value, copyLabel }: { label: string; value: string; copyLabel: string }) {
  return (
    <div className="field">
      <span className="label">{label}</span>
      <div className="secret">
        <pre>{value}</pre>
        <CopyButton text={value} label={copyLabel} />
      </div>
    </div>
  );
}

/** What registration answered, shown once: the key, the broker URL and the command to run. */
function Registered({ agent, onDone }: { agent: CreatedAgent; onDone: () => void }) {
  const command = agentCommand(agent, window.location.origin);
  return (
    <div data-testid="registered-agent">
      <p className="notice notice-warn" role="status">
        Agent <strong>{agent.name}</strong> is registered. Copy its key now:{' '}
        <strong>it is shown only once</strong> (only its hash is stored).
      </p>
      <Secret label="API key" value={agent.api_key} copyLabel="Copy API key" />
      {agent.broker ? (
        <>
          <Secret label="Broker URL" value={agent.broker.url} copyLabel="Copy broker URL" />
          <div className="field">
            <span className="label">Queue prefix</span>
            {agent.broker.amqp_prefix ? (
              <code data-testid="amqp-prefix">{agent.broker.amqp_prefix}</code>
            ) : (
              <span className="muted">none</span>
            )}
            <span className="muted">
              {' '}
              (SDK option <code>prefix</code>; queues: {agent.broker.queues.join(', ')})
            </span>
          </div>
          {command && <Secret label="Command to run it" value={command} copyLabel="Copy command" />}
        </>
      ) : (
        <p className="muted">
          This server runs the in-process broker (no <code>AMQP_URL</code>), which has no broker users: only
          the demo agents inside the server can take tasks. Start devart with RabbitMQ to run agents
          elsewhere.
        </p>
      )}
      <div className="actions">
        <button type="button" className="button button-primary" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

export function RegisterAgentForm({ onDone }: { onDone: () => void }) {
  const register = useRegisterAgent();
  const [name, setName] = useState('');
  const [capabilities, setCapabilities] = useState('');
  const [errors, setErrors] = useState<{ name?: string; capabilities?: string }>({});
  if (register.data) return <Registered agent={register.data} onDone={onDone} />;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const list = capabilities.split(/[\s,]+/).filter(Boolean);
    const parsed = CreateAgentBody.safeParse({ name, capabilities: list });
    if (!parsed.success) {
      const next: typeof errors = {};
      for (const issue of parsed.error.issues) {
        if (issue.path[0] === 'capabilities') {
          const bad = list[Number(issue.path[1])];
          next.capabilities ??= bad === undefined ? issue.message : `“${bad}” ${issue.message}`;
        } else next.name ??= issue.message;
      }
      setErrors(next);
      return;
    }
    register.mutate(parsed.data);
  };
  return (
    <form onSubmit={submit} noValidate aria-label="Register an agent">
      <div className="field">
        <label htmlFor="agent-name">Name</label>
        <input
          id="agent-name"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            setErrors((x) => ({ ...x, name: undefined }));
          }}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={errors.name ? 'agent-name-error' : undefined}
          required
        />
        {errors.name && (
          <span className="field-error" id="agent-name-error" role="alert">
            {errors.name}
          </span>
        )}
      </div>
      <div className="field">
        <label htmlFor="agent-capabilities">Capabilities</label>
        <input
          id="agent-capabilities"
          value={capabilities}
          placeholder="echo, shell"
          onChange={(e) => {
            setCapabilities(e.target.value);
            setErrors((x) => ({ ...x, capabilities: undefined }));
          }}
          aria-invalid={errors.capabilities ? true : undefined}
          aria-describedby="agent-capabilities-hint"
        />
        <span className="muted" id="agent-capabilities-hint">
          Comma-separated lowercase slugs: the tasks it may take.
        </span>
        {errors.capabilities && (
          <span className="field-error" role="alert">
            {errors.capabilities}
          </span>
        )}
      </div>
      {register.isError && <ErrorMessage error={register.error} title="Not registered" />}
      <div className="actions">
        <button type="submit" className="button button-primary" disabled={register.isPending}>
          {register.isPending ? 'Registering…' : 'Register'}
        </button>
      </div>
    </form>
  );
}

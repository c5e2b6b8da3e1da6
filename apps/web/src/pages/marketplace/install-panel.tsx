import type { MarketplaceInstall, MarketplaceItem } from '@devart/contracts';
import { type FormEvent, useState } from 'react';
import { Link } from 'react-router';
import { CopyButton } from '../../components/copy-button';
import { ErrorMessage } from '../../components/data-state';
import { useCan } from '../../lib/auth';
import { useInstallItem } from './hooks';
import { plural } from './plural';

/** What an install did, as the API answered: the workflow it created, or how to run the agent. */
export function InstallResult({ result }: { result: MarketplaceInstall }) {
  return (
    <div data-testid="install-result" className="stack mp-install-result">
      {result.workflow && (
        <p className="notice" role="status">
          Installed {result.name}@{result.version} as the workflow{' '}
          <Link to={`/workflows/${result.workflow.id}`}>{result.workflow.name}</Link>: trigger it from its
          page.
        </p>
      )}
      {result.agent && (
        <>
          <p className="notice" role="status">
            {result.name}@{result.version} is an agent: it runs outside the API. To run it:
          </p>
          <ol className="mp-steps">
            {result.agent.steps.map((step) => (
              <li key={step}>{step}</li>
            ))}
          </ol>
          <div className="field">
            <span className="label">Command</span>
            <div className="secret">
              <pre>{result.agent.command}</pre>
              <CopyButton text={result.agent.command} label="Copy command" />
            </div>
          </div>
        </>
      )}
      {result.warnings.map((warning) => (
        <p key={warning} className="notice notice-warn">
          {warning}
        </p>
      ))}
      <p className="muted small">This version now has {plural(result.downloads, 'install')}.</p>
    </div>
  );
}

/**
 * Install (supervisors and admins): a workflow item becomes a workflow here, under its own name or
 * one given; an agent item answers with the command and steps that run it. Viewers see what
 * installing does, without the button.
 */
export function InstallPanel({ item }: { item: MarketplaceItem }) {
  const canInstall = useCan('marketplace.install');
  const install = useInstallItem(item.id);
  const [workflowName, setWorkflowName] = useState('');
  const manifestName = typeof item.manifest?.name === 'string' ? item.manifest.name : undefined;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    install.mutate(workflowName.trim() ? { workflow_name: workflowName.trim() } : {});
  };
  return (
    <section className="panel" aria-labelledby="install-title">
      <h2 id="install-title">Install</h2>
      <p className="muted small">
        {item.item_type === 'workflow'
          ? 'Installing creates a workflow on this platform from this exact version; its runs then count in the quality signals.'
          : 'Installing gives the command that runs this agent with a key an admin registers.'}
      </p>
      {!canInstall ? (
        <p className="muted small">Supervisors and admins install.</p>
      ) : install.data ? (
        <InstallResult result={install.data} />
      ) : (
        <form onSubmit={submit} aria-label={`Install ${item.name}`}>
          {item.item_type === 'workflow' && (
            <div className="field">
              <label htmlFor="install-workflow-name">Workflow name</label>
              <input
                id="install-workflow-name"
                value={workflowName}
                placeholder={manifestName}
                maxLength={200}
                onChange={(e) => setWorkflowName(e.target.value)}
                aria-describedby="install-workflow-name-hint"
              />
              <span id="install-workflow-name-hint" className="muted">
                Blank for {manifestName ? `“${manifestName}”` : 'the manifest’s name'}.
              </span>
            </div>
          )}
          {install.isError && <ErrorMessage error={install.error} title="Not installed" />}
          <button type="submit" className="button button-primary" disabled={install.isPending}>
            Install
          </button>
        </form>
      )}
    </section>
  );
}

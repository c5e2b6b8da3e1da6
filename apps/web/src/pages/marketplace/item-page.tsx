import {
  AgentManifest,
  type MarketplaceItem,
  type MarketplaceVersions,
  WorkflowDefinitionBody,
} from '@devart/contracts';
import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { DataState, ErrorMessage } from '../../components/data-state';
import { Confirm } from '../../components/dialog';
import { PageHeader } from '../../components/layout';
import { Cost, DateTime, Duration, RelativeTime } from '../../components/time';
import { useCan, useSession } from '../../lib/auth';
import { formatCount, formatJson, shortId } from '../../lib/format';
import { WorkflowDag } from '../workflows/workflow-dag';
import { useMarketplaceItem, useMarketplaceVersions, useYankItem } from './hooks';
import { InstallPanel } from './install-panel';
import { plural } from './plural';
import { TypeBadge } from './search-page';

const percent = (rate: number | null) => (rate === null ? '—' : `${Math.round(rate * 1000) / 10} %`);

/** What tells a user whether to trust an item: its runs elsewhere (workflows), installs, upkeep. */
function QualitySignals({ item, versions }: { item: MarketplaceItem; versions?: MarketplaceVersions }) {
  const q = item.quality;
  const allInstalls = versions?.versions[0]?.downloads_all_versions;
  const live = versions?.versions.filter((v) => v.yanked_at === null).length;
  return (
    <section className="panel" aria-labelledby="quality-title" data-testid="quality-signals">
      <h2 id="quality-title">Quality signals</h2>
      <dl className="facts">
        {q && (
          <>
            <dt>Success rate</dt>
            <dd data-testid="quality-success-rate">
              {q.runs === 0 ? (
                <span className="muted">no runs yet</span>
              ) : (
                <>
                  {percent(q.success_rate)}{' '}
                  <span className="muted">
                    ({q.completed} completed, {q.failed} failed of {plural(q.runs, 'run')})
                  </span>
                </>
              )}
            </dd>
            <dt>Median duration</dt>
            <dd>
              <Duration ms={q.median_duration_ms} />
            </dd>
            <dt>Median cost</dt>
            <dd>
              <Cost value={q.median_cost} />
            </dd>
            <dt>Installed as</dt>
            <dd className="num">{plural(q.installs, 'workflow')} here</dd>
          </>
        )}
        <dt>Installs</dt>
        <dd className="num">
          {formatCount(item.downloads)} of this version
          {allInstalls !== undefined && <>, {formatCount(allInstalls)} of all versions</>}
        </dd>
        <dt>Versions</dt>
        <dd className="num">
          {versions ? (
            <>
              {versions.versions.length} published
              {live !== versions.versions.length && <>, {live} not yanked</>}
              {versions.latest === item.version && <> · this is the latest</>}
            </>
          ) : (
            '…'
          )}
        </dd>
        <dt>Published</dt>
        <dd>
          <RelativeTime iso={item.created_at} />
        </dd>
        <dt>Source</dt>
        <dd>
          {item.repository_url ? (
            <a href={item.repository_url} rel="noreferrer noopener" target="_blank">
              {item.repository_url.replace(/^https:\/\//, '')}
            </a>
          ) : (
            <span className="muted">no repository given</span>
          )}
        </dd>
      </dl>
      {!q && (
        <p className="muted small">
          Run statistics exist for workflow items only: an agent runs outside this platform’s workflows.
        </p>
      )}
    </section>
  );
}

function VersionTable({ current, versions }: { current: MarketplaceItem; versions: MarketplaceVersions }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">Versions of {versions.name}, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Published</th>
            <th scope="col">Installs</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {versions.versions.map((v) => (
            <tr key={v.id} data-version={v.version} aria-current={v.id === current.id ? 'page' : undefined}>
              <td>
                {v.id === current.id ? (
                  <strong className="num">{v.version}</strong>
                ) : (
                  <Link to={`/marketplace/${v.id}`} className="num">
                    {v.version}
                  </Link>
                )}
              </td>
              <td>
                <RelativeTime iso={v.created_at} />
              </td>
              <td className="num">{formatCount(v.downloads)}</td>
              <td>
                {v.yanked_at ? (
                  <span className="badge badge-bad">YANKED</span>
                ) : v.version === versions.latest ? (
                  <span className="badge badge-ok">LATEST</span>
                ) : /-/.test(v.version) ? (
                  <span className="badge badge-wait">PRE-RELEASE</span>
                ) : (
                  <span className="muted">—</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A workflow manifest as its DAG and variables; an agent's as capabilities, image and resources. */
function Manifest({ item }: { item: MarketplaceItem }) {
  const workflow =
    item.item_type === 'workflow' ? WorkflowDefinitionBody.safeParse(item.manifest) : undefined;
  const agent = item.item_type === 'agent' ? AgentManifest.safeParse(item.manifest) : undefined;
  return (
    <section className="panel" aria-labelledby="manifest-title">
      <h2 id="manifest-title">{item.item_type === 'workflow' ? 'Workflow' : 'Agent'}</h2>
      {workflow?.success && (
        <>
          <WorkflowDag steps={workflow.data.steps} label={`Steps of ${item.name} as a graph`} />
          {Object.keys(workflow.data.variables ?? {}).length > 0 && (
            <>
              <h3 className="mp-subtitle">Variables</h3>
              <ul className="mp-variables">
                {Object.entries(workflow.data.variables ?? {}).map(([name, v]) => (
                  <li key={name}>
                    <code>{name}</code> <span className="muted">{v.type}</span>
                    {v.required && v.default === undefined && <span className="chip">required</span>}
                    {v.default !== undefined && (
                      <span className="muted"> · default {JSON.stringify(v.default)}</span>
                    )}
                    {v.description && <span className="muted"> — {v.description}</span>}
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
      {agent?.success && (
        <dl className="facts">
          <dt>Capabilities</dt>
          <dd>
            {agent.data.capabilities.map((c) => (
              <span key={c} className="chip">
                {c}
              </span>
            ))}
          </dd>
          <dt>Image</dt>
          <dd>
            {agent.data.image ? <code>{agent.data.image}</code> : <span className="muted">none given</span>}
          </dd>
          <dt>Resources</dt>
          <dd>
            {agent.data.resources
              ? [
                  agent.data.resources.cpu !== undefined && `${agent.data.resources.cpu} millicores`,
                  agent.data.resources.memory !== undefined && `${agent.data.resources.memory} MiB`,
                ]
                  .filter(Boolean)
                  .join(', ')
              : '—'}
          </dd>
        </dl>
      )}
      <details className="mp-manifest">
        <summary>Manifest (JSON)</summary>
        <pre>{formatJson(item.manifest)}</pre>
      </details>
    </section>
  );
}

function Yank({ item }: { item: MarketplaceItem }) {
  const canYank = useCan('marketplace.yank');
  const session = useSession();
  const yank = useYankItem();
  const [confirming, setConfirming] = useState(false);
  // The API lets only the version's publisher or an admin yank it.
  if (!canYank || item.yanked_at || (item.publisher_id !== session.subject && session.role !== 'admin'))
    return null;
  const label = `Yank ${item.name}@${item.version}`;
  return (
    <>
      <button type="button" className="button" onClick={() => setConfirming(true)}>
        Yank
      </button>
      <Confirm
        open={confirming}
        title={`${label}?`}
        confirmLabel={label}
        danger
        busy={yank.isPending}
        onClose={() => setConfirming(false)}
        onConfirm={() => yank.mutate(item.id, { onSuccess: () => setConfirming(false) })}
      >
        <p>
          Search stops showing this version. It still resolves by its id and exact version, and installs with
          a warning; a yank cannot be undone.
        </p>
        {yank.isError && <ErrorMessage error={yank.error} title="Not yanked" />}
      </Confirm>
    </>
  );
}

function ItemView({ item }: { item: MarketplaceItem }) {
  const versions = useMarketplaceVersions(item.name);
  const canPublish = useCan('marketplace.publish');
  return (
    <>
      <nav aria-label="Breadcrumb" className="muted">
        <Link to="/marketplace">Marketplace</Link> / {item.name}
      </nav>
      <PageHeader title={item.name}>
        <span className="num" data-testid="item-version">
          {item.version}
        </span>
        <TypeBadge type={item.item_type} />
        {canPublish && (
          <Link className="button" to={`/marketplace/publish?from=${item.id}`}>
            New version
          </Link>
        )}
        <Yank item={item} />
      </PageHeader>
      {item.yanked_at && (
        <p className="notice notice-warn" role="status">
          This version was yanked <RelativeTime iso={item.yanked_at} />: search no longer shows it, and
          installing it warns.
        </p>
      )}
      {item.description && <p>{item.description}</p>}
      {(item.tags ?? []).length > 0 && (
        <p className="mp-tags-line">
          {(item.tags ?? []).map((tag) => (
            <Link key={tag} className="chip" to={`/marketplace?tags=${encodeURIComponent(tag)}`}>
              {tag}
            </Link>
          ))}
        </p>
      )}
      <p className="muted small">
        Published by <code title={item.publisher_id ?? undefined}>{shortId(item.publisher_id)}</code> ·{' '}
        <DateTime iso={item.created_at} />
      </p>
      <div className="mp-layout">
        <div className="stack">
          <Manifest item={item} />
          <section className="panel" aria-labelledby="versions-title">
            <h2 id="versions-title">Versions</h2>
            <DataState query={versions} label="versions">
              {(v) => <VersionTable current={item} versions={v} />}
            </DataState>
          </section>
        </div>
        <div className="stack">
          <QualitySignals item={item} versions={versions.data} />
          <InstallPanel item={item} />
        </div>
      </div>
    </>
  );
}

/** /marketplace/:itemId — one version: manifest, versions, quality signals, Install, Yank. */
export function ItemPage() {
  const { itemId = '' } = useParams();
  const item = useMarketplaceItem(itemId);
  return (
    <DataState query={item} label="the item">
      {(i) => <ItemView item={i} />}
    </DataState>
  );
}

import {
  AgentManifest,
  type MarketplaceItem,
  type MarketplaceItemType,
  PublishMarketplaceItemBody,
  WorkflowDefinitionBody,
} from '@devart/contracts';
import { validateWorkflow } from '@devart/core';
import { type FormEvent, type ReactNode, useId, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { DataState, ErrorMessage } from '../../components/data-state';
import { JsonEditor, parseJsonObject } from '../../components/json-editor';
import { PageHeader } from '../../components/layout';
import { ApiError } from '../../lib/api';
import { useCan } from '../../lib/auth';
import { parseTags } from './filters';
import { useMarketplaceItem, usePublishItem } from './hooks';

export interface PublishFields {
  item_type: MarketplaceItemType;
  name: string;
  version: string;
  description: string;
  tags: string;
  repository_url: string;
  manifest: string;
}

type FieldName = keyof PublishFields;
export type PublishErrors = Partial<Record<FieldName, string>>;

/** A manifest to start from, per type: small, valid, and showing the parts a user fills in. */
export const manifestTemplates: Record<MarketplaceItemType, string> = {
  workflow: JSON.stringify(
    {
      name: 'my-workflow',
      variables: { branch: { type: 'string', default: 'main', description: 'The branch to build' } },
      steps: [
        {
          key: 'build',
          title: 'Build {{vars.branch}}',
          capability: 'echo',
          payload: { branch: '{{vars.branch}}' },
        },
        {
          key: 'report',
          title: 'Report',
          capability: 'echo',
          depends_on: ['build'],
          payload: { built: '{{steps.build.result.branch}}' },
        },
      ],
    },
    null,
    2,
  ),
  agent: JSON.stringify({ capabilities: ['echo'], resources: { cpu: 500, memory: 256 } }, null, 2),
};

/**
 * The next patch version, for publishing a new version of an item: 1.2.3 → 1.2.4; a pre-release
 * becomes its release (1.3.0-rc.1 → 1.3.0), as `semver inc patch` does; anything else is kept.
 */
export function nextPatch(version: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)(-[^+]*)?(\+.*)?$/.exec(version);
  if (!m) return version;
  const [, major, minor, patch, pre] = m;
  return pre ? `${major}.${minor}.${patch}` : `${major}.${minor}.${Number(patch) + 1}`;
}

/** The form's fields for a new version of `item`: its name, type, texts and manifest, the next patch version. */
export function fieldsFromItem(item: MarketplaceItem): PublishFields {
  return {
    item_type: item.item_type,
    name: item.name,
    version: nextPatch(item.version),
    description: item.description ?? '',
    tags: (item.tags ?? []).join(', '),
    repository_url: item.repository_url ?? '',
    manifest: item.manifest ? JSON.stringify(item.manifest, null, 2) : manifestTemplates[item.item_type],
  };
}

export const emptyFields: PublishFields = {
  item_type: 'workflow',
  name: '',
  version: '1.0.0',
  description: '',
  tags: '',
  repository_url: '',
  manifest: manifestTemplates.workflow,
};

/** `manifest.steps[1].depends_on` → `steps[1].depends_on`, for a message under the manifest editor. */
function manifestProblem(path: string, message: string): string {
  return path ? `${path}: ${message}` : message;
}

function zodPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (text, part) =>
      typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part),
    '',
  );
}

/**
 * Reads the publish form into the body POST /api/marketplace takes, or the message for each bad
 * field: the contract's own PublishMarketplaceItemBody, then the manifest as its type requires —
 * for a workflow the whole-definition checks the API runs (cycles, unknown steps, templates).
 */
export function readPublishForm(
  fields: PublishFields,
): { ok: true; body: PublishMarketplaceItemBody } | { ok: false; errors: PublishErrors } {
  const errors: PublishErrors = {};
  const manifest = parseJsonObject(fields.manifest);
  if (!manifest.ok) errors.manifest = manifest.error;
  else if (!manifest.value) errors.manifest = 'is required: a JSON object';
  const tags = parseTags(fields.tags);
  if (tags.invalid.length > 0) errors.tags = `not a tag: ${tags.invalid.join(', ')}`;
  const candidate = {
    item_type: fields.item_type,
    name: fields.name.trim(),
    version: fields.version.trim(),
    ...(fields.description.trim() ? { description: fields.description.trim() } : {}),
    ...(tags.tags.length > 0 ? { tags: tags.tags } : {}),
    ...(fields.repository_url.trim() ? { repository_url: fields.repository_url.trim() } : {}),
    manifest: manifest.ok ? (manifest.value ?? {}) : {},
  };
  const parsed = PublishMarketplaceItemBody.safeParse(candidate);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0] ?? 'name') as FieldName;
      errors[field] ??= issue.message;
    }
  }
  if (!errors.manifest && manifest.ok && manifest.value) {
    if (fields.item_type === 'workflow') {
      const definition = WorkflowDefinitionBody.safeParse(manifest.value);
      if (!definition.success) {
        const issue = definition.error.issues[0]!;
        errors.manifest = manifestProblem(zodPath(issue.path), issue.message);
      } else {
        const checked = validateWorkflow(definition.data);
        if (!checked.ok) {
          errors.manifest = checked.problems.map((p) => manifestProblem(p.path, p.message)).join('; ');
        }
      }
    } else {
      const agent = AgentManifest.safeParse(manifest.value);
      if (!agent.success) {
        const issue = agent.error.issues[0]!;
        errors.manifest = manifestProblem(zodPath(issue.path), issue.message);
      }
    }
  }
  if (Object.keys(errors).length > 0 || !parsed.success) return { ok: false, errors };
  return { ok: true, body: parsed.data };
}

/** The API's field errors by form field: `manifest.steps[0].key` goes under Manifest. */
export function errorsOfProblem(error: unknown): PublishErrors {
  const errors: PublishErrors = {};
  if (!(error instanceof ApiError)) return errors;
  for (const e of error.problem.errors ?? []) {
    const [head = '', ...rest] = e.field.split('.');
    const field = head.replace(/\[.*$/, '') as FieldName;
    if (field in emptyFields)
      errors[field] ??=
        field === 'manifest' && rest.length > 0 ? `${rest.join('.')}: ${e.message}` : e.message;
  }
  return errors;
}

/** The publish form (supervisors and admins); calls `onPublished` with the new version. */
export function PublishForm({
  initial = emptyFields,
  onPublished,
}: {
  initial?: PublishFields;
  onPublished: (item: MarketplaceItem) => void;
}) {
  const id = useId();
  const publish = usePublishItem();
  const [fields, setFields] = useState(initial);
  const [errors, setErrors] = useState<PublishErrors>({});
  const shown: PublishErrors = { ...errorsOfProblem(publish.error), ...errors };
  const set = (name: FieldName, value: string) => {
    setFields((f) => {
      const next = { ...f, [name]: value };
      // A template nobody edited follows the type; an edited manifest stays.
      if (name === 'item_type' && f.manifest === manifestTemplates[f.item_type]) {
        next.manifest = manifestTemplates[value as MarketplaceItemType];
      }
      return next;
    });
    setErrors((e) => ({ ...e, [name]: undefined }));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    publish.reset();
    const read = readPublishForm(fields);
    if (!read.ok) {
      setErrors(read.errors);
      return;
    }
    setErrors({});
    publish.mutate(read.body, { onSuccess: onPublished });
  };
  const field = (name: FieldName, label: string, input: ReactNode, hint?: string) => (
    <div className="field">
      <label htmlFor={`${id}-${name}`}>{label}</label>
      {input}
      {hint && (
        <span id={`${id}-${name}-hint`} className="muted">
          {hint}
        </span>
      )}
      {shown[name] && (
        <span className="field-error" id={`${id}-${name}-error`} role="alert">
          {shown[name]}
        </span>
      )}
    </div>
  );
  const inputProps = (name: FieldName, hint?: boolean) => ({
    id: `${id}-${name}`,
    name,
    value: fields[name],
    onChange: (e: { target: { value: string } }) => set(name, e.target.value),
    'aria-invalid': shown[name] ? true : undefined,
    'aria-describedby':
      [hint ? `${id}-${name}-hint` : '', shown[name] ? `${id}-${name}-error` : '']
        .filter(Boolean)
        .join(' ') || undefined,
  });
  return (
    <form onSubmit={submit} noValidate aria-label="Publish to the marketplace" className="mp-publish">
      <div className="mp-row">
        {field(
          'item_type',
          'Type',
          <select {...inputProps('item_type')}>
            <option value="workflow">workflow</option>
            <option value="agent">agent</option>
          </select>,
        )}
        {field(
          'version',
          'Version',
          <input {...inputProps('version', true)} size={12} />,
          'semver, e.g. 1.0.0',
        )}
      </div>
      {field(
        'name',
        'Name',
        <input {...inputProps('name', true)} placeholder="@acme/ci-pipeline" autoComplete="off" />,
        'A lowercase slug, optionally under an @scope/. The first version fixes its type and its publisher.',
      )}
      {field('description', 'Description', <textarea {...inputProps('description')} rows={2} />)}
      {field(
        'tags',
        'Tags',
        <input {...inputProps('tags', true)} placeholder="ci, testing" />,
        'Comma-separated.',
      )}
      {field(
        'repository_url',
        'Repository URL',
        <input
          {...inputProps('repository_url')}
          type="url"
          placeholder="https://github.com/acme/ci-pipeline"
        />,
      )}
      <JsonEditor
        label="Manifest (JSON)"
        value={fields.manifest}
        onChange={(text) => set('manifest', text)}
        error={shown.manifest}
        rows={14}
        hint={
          fields.item_type === 'workflow'
            ? 'The body of POST /api/workflows: name, variables, steps.'
            : 'capabilities, and optionally image and resources (cpu in millicores, memory in MiB).'
        }
      />
      {publish.isError && <ErrorMessage error={publish.error} title="Not published" />}
      <div className="actions">
        <button
          type="submit"
          className="button button-primary"
          disabled={publish.isPending}
          aria-busy={publish.isPending || undefined}
        >
          Publish
        </button>
        <Link to="/marketplace" className="button">
          Cancel
        </Link>
      </div>
    </form>
  );
}

function FromItem({ itemId, onPublished }: { itemId: string; onPublished: (item: MarketplaceItem) => void }) {
  const item = useMarketplaceItem(itemId);
  return (
    <DataState query={item} label="the item to publish a version of">
      {(i) => <PublishForm key={i.id} initial={fieldsFromItem(i)} onPublished={onPublished} />}
    </DataState>
  );
}

/** /marketplace/publish[?from=<itemId>] — a new item, or the next version of one. */
export function PublishPage() {
  const canPublish = useCan('marketplace.publish');
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const from = params.get('from');
  const done = (item: MarketplaceItem) => navigate(`/marketplace/${item.id}`);
  return (
    <>
      <nav aria-label="Breadcrumb" className="muted">
        <Link to="/marketplace">Marketplace</Link> / publish
      </nav>
      <PageHeader title={from ? 'Publish a new version' : 'Publish to the marketplace'} />
      {!canPublish ? (
        <p className="notice notice-warn">Only supervisors and admins publish.</p>
      ) : (
        <div className="panel mp-publish-panel">
          {from ? <FromItem itemId={from} onPublished={done} /> : <PublishForm onPublished={done} />}
        </div>
      )}
    </>
  );
}

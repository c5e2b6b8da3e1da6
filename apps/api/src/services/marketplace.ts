import {
  AgentManifest,
  type InstallMarketplaceItemBody,
  type MarketplaceSearchQuery,
  type PublishMarketplaceItemBody,
  WorkflowDefinitionBody,
} from '@devart/contracts';
import { builtInCapabilities } from '@devart/core';
import {
  appendEvents,
  countMarketplaceDownload,
  type Db,
  findInstalledWorkflow,
  getMarketplaceItem,
  getMarketplaceItemByVersion,
  insertMarketplaceItem,
  listMarketplaceVersions,
  lockMarketplaceInstall,
  lockMarketplaceName,
  type MarketplaceDetailRow,
  marketplaceNameOwner,
  marketplaceOrder,
  marketplaceQuality,
  type NewEvent,
  searchMarketplace,
  yankMarketplaceItem,
} from '@devart/db';
import semver from 'semver';
import { decodeCursor, encodeCursor } from './cursor';
import {
  ConflictError,
  type FieldError,
  ForbiddenError,
  fieldErrors,
  NotFoundError,
  ValidationError,
} from './domain-errors';
import { capabilityWarnings, createWorkflow, workflowProblems } from './workflows';

export interface Publisher {
  userId: string;
  isAdmin: boolean;
}

/** A marketplace event: which version of which name, its type and publisher. */
function marketplaceEvent(
  type: 'marketplace.published' | 'marketplace.yanked',
  item: MarketplaceDetailRow,
): NewEvent {
  return {
    type,
    item_id: item.id,
    data: {
      name: item.name,
      version: item.version,
      item_type: item.item_type,
      publisher_id: item.publisher_id,
      ...(item.yanked_at ? { yanked_at: item.yanked_at.toISOString() } : {}),
    },
  };
}

/** A manifest must describe what its type says: the checks of POST /api/workflows, or an AgentManifest. */
function checkManifest(body: PublishMarketplaceItemBody): void {
  // No manifest: a listing that points to its repository_url (the contract requires one then).
  if (body.manifest === undefined) return;
  if (body.item_type === 'workflow') {
    const parsed = WorkflowDefinitionBody.safeParse(body.manifest);
    if (!parsed.success) throw manifestProblem(fieldErrors('body', parsed.error.issues));
    const problems = workflowProblems(parsed.data);
    if (problems.length > 0) throw manifestProblem(problems);
    return;
  }
  const parsed = AgentManifest.safeParse(body.manifest);
  if (!parsed.success) throw manifestProblem(fieldErrors('body', parsed.error.issues));
}

function manifestProblem(errors: FieldError[]): ValidationError {
  return new ValidationError(
    errors.map((e) => ({
      location: 'body',
      field: e.field === 'body' ? 'manifest' : `manifest.${e.field}`,
      message: e.message,
    })),
  );
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}

/**
 * Publishes one version. The first version of a name fixes its type and its owner; later
 * versions must match. Concurrent publishes of one name@version are decided by the table's
 * unique constraint: exactly one succeeds, the others get 409.
 */
export async function publishItem(db: Db, body: PublishMarketplaceItemBody, publisher: Publisher) {
  checkManifest(body);
  try {
    const item = await db.transaction(async (tx) => {
      await lockMarketplaceName(tx, body.name);
      const owner = await marketplaceNameOwner(tx, body.name);
      if (owner && owner.item_type !== body.item_type) {
        throw new ConflictError(
          `${body.name} is published as a ${owner.item_type}; a version cannot change it to a ${body.item_type}.`,
        );
      }
      if (owner && owner.publisher_id !== publisher.userId && !publisher.isAdmin) {
        throw new ForbiddenError(
          `${body.name} belongs to another publisher: only they (or an admin) publish its versions.`,
        );
      }
      const inserted = await insertMarketplaceItem(tx, {
        itemType: body.item_type,
        name: body.name,
        version: body.version,
        description: body.description ?? null,
        publisherId: publisher.userId,
        tags: body.tags ?? [],
        repositoryUrl: body.repository_url ?? null,
        manifest: body.manifest ?? null,
      });
      appendEvents(tx, [marketplaceEvent('marketplace.published', inserted)]);
      return inserted;
    });
    return await withQuality(db, item);
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new ConflictError(
        `${body.name}@${body.version} is already published; versions never change: publish a new one.`,
      );
    }
    throw error;
  }
}

/** Words of `q` as full-text prefix terms; punctuation separates words, as in names. */
export function searchTerms(q: string | undefined): string[] {
  return (q ?? '')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean)
    .slice(0, 16);
}

export async function searchItems(db: Db, query: MarketplaceSearchQuery) {
  const terms = searchTerms(query.q);
  const sort = query.sort ?? (terms.length > 0 ? 'relevance' : 'newest');
  if (sort === 'relevance' && terms.length === 0) {
    throw new ValidationError([
      { location: 'query', field: 'sort', message: 'relevance needs a search text in q' },
    ]);
  }
  const page = await searchMarketplace(db, {
    terms,
    type: query.type,
    tags: query.tags ?? [],
    publisherId: query.publisher,
    sort,
    versions: query.versions,
    after: query.cursor ? decodeCursor(query.cursor, marketplaceOrder(sort), sort) : undefined,
    limit: query.limit,
  });
  return { items: page.items, next_cursor: page.next ? encodeCursor(page.next, sort) : null };
}

async function withQuality(db: Db, item: MarketplaceDetailRow) {
  return { ...item, quality: item.item_type === 'workflow' ? await marketplaceQuality(db, item.id) : null };
}

export async function findItem(db: Db, itemId: string) {
  const item = await getMarketplaceItem(db, itemId);
  if (!item) throw new NotFoundError(`No marketplace item ${itemId}.`);
  return withQuality(db, item);
}

export async function findItemVersion(db: Db, name: string, version: string) {
  const item = await getMarketplaceItemByVersion(db, name, version);
  if (!item) throw new NotFoundError(`No ${name}@${version} in the marketplace.`);
  return withQuality(db, item);
}

export async function listVersions(db: Db, name: string) {
  const versions = await listMarketplaceVersions(db, name);
  const first = versions[0];
  if (!first) throw new NotFoundError(`No ${name} in the marketplace.`);
  const live = versions.filter((v) => v.yanked_at === null);
  const latest = live.find((v) => semver.prerelease(v.version) === null) ?? live[0];
  return { name, item_type: first.item_type, latest: latest?.version ?? null, versions };
}

export async function yankItem(db: Db, itemId: string, by: Publisher) {
  const result = await db.transaction(async (tx) => {
    const yanked = await yankMarketplaceItem(tx, itemId, by);
    if (yanked.outcome === 'yanked' && yanked.yanked_now) {
      appendEvents(tx, [marketplaceEvent('marketplace.yanked', yanked.item)]);
    }
    return yanked;
  });
  if (result.outcome === 'not_found') throw new NotFoundError(`No marketplace item ${itemId}.`);
  if (result.outcome !== 'yanked') {
    throw new ForbiddenError('Only the publisher of this version or an admin may yank it.');
  }
  return withQuality(db, result.item);
}

/**
 * Installs one exact version. A workflow item becomes a workflow here (checked again, as the
 * rules may have tightened since it was published) and its download is counted in the same
 * transaction; installing it again under the same name answers that workflow (`installation:
 * 'existing'`) and counts nothing. An agent item returns its manifest and the command that runs
 * it. A listing (no manifest) is refused with 409 naming its repository.
 */
export async function installItem(
  db: Db,
  itemId: string,
  body: InstallMarketplaceItemBody,
  installer: {
    userId: string;
    apiUrl: string;
    /** AMQP_PREFIX ('' for none): an agent that consumes without it finds no queue it may read. */
    amqpPrefix?: string;
  },
) {
  const found = await getMarketplaceItem(db, itemId);
  if (!found) throw new NotFoundError(`No marketplace item ${itemId}.`);
  if (found.manifest === null) {
    throw new ConflictError(
      `${found.name}@${found.version} is a listing without a manifest: there is nothing to install. ` +
        (found.repository_url
          ? `Look at its repository, ${found.repository_url}, for how to run it.`
          : 'It names no repository either; ask its publisher.'),
    );
  }
  const manifest = found.manifest;
  const warnings: string[] = [];
  if (found.yanked_at) {
    warnings.push(
      `${found.name}@${found.version} was yanked by its publisher at ${found.yanked_at.toISOString()}; prefer a newer version.`,
    );
  }
  const summary = (item: MarketplaceDetailRow) => ({
    item_id: item.id,
    item_type: item.item_type,
    name: item.name,
    version: item.version,
    downloads: item.downloads,
    warnings,
  });

  if (found.item_type === 'workflow') {
    const definition = WorkflowDefinitionBody.safeParse({
      ...manifest,
      ...(body.workflow_name ? { name: body.workflow_name } : {}),
    });
    if (!definition.success) {
      throw new ConflictError(
        `${found.name}@${found.version} no longer passes this installation's workflow checks: ${definition.error.issues[0]?.message}`,
      );
    }
    return db.transaction(async (tx) => {
      await lockMarketplaceInstall(tx, found.id);
      warnings.push(...(await capabilityWarnings(tx, definition.data.steps)));
      const existing = await findInstalledWorkflow(tx, found.id, definition.data.name);
      if (existing) return { ...summary(found), workflow: existing, installation: 'existing' as const };
      const workflow = await createWorkflow(tx, definition.data, installer.userId, {
        marketplaceItemId: found.id,
      });
      const counted = await countMarketplaceDownload(tx, found.id);
      return { ...summary(counted!), workflow, installation: 'created' as const };
    });
  }

  const parsed = AgentManifest.safeParse(manifest);
  if (!parsed.success) {
    // Only a row written past the API (straight into the database) can get here.
    throw new ConflictError(
      `${found.name}@${found.version} has no valid agent manifest: ${parsed.error.issues[0]?.message}`,
    );
  }
  const agentManifest = parsed.data;
  const counted = await countMarketplaceDownload(db, found.id);
  const unknown = agentManifest.capabilities.filter(
    (c) => !(builtInCapabilities as readonly string[]).includes(c),
  );
  if (unknown.length > 0) {
    warnings.push(
      `The reference agent (devart agent) has no handler for ${unknown.join(', ')}: run the item's own image` +
        `${agentManifest.image ? ` (${agentManifest.image})` : ''} with the same key, or an agent built on @devart/sdk.`,
    );
  }
  return {
    ...summary(counted!),
    agent: {
      manifest: agentManifest,
      // A prefix holds only [A-Za-z0-9_.-] (AMQP_PREFIX's rule), so it needs no shell quoting.
      command:
        `npx devart agent --capability ${agentManifest.capabilities.join(',')} --api ${installer.apiUrl} --key "$DEVART_AGENT_KEY" --amqp "$DEVART_AMQP_URL"` +
        (installer.amqpPrefix ? ` --prefix ${installer.amqpPrefix}` : ''),
      steps: [
        `An admin registers the agent: POST /api/agents {"name":"${found.name}","capabilities":${JSON.stringify(agentManifest.capabilities)}}.`,
        'Export the returned api_key as DEVART_AGENT_KEY and broker.url as DEVART_AMQP_URL (needs a devart started with AMQP_URL).',
        'Run the command.',
      ],
    },
  };
}

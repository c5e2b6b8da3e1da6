import type { Queryable } from './client';
import { type KeysetColumn, keysetPage, keysetQuery, newestFirst } from './keyset';

export type MarketplaceItemType = 'agent' | 'workflow';

export interface MarketplaceItemRow {
  id: string;
  item_type: MarketplaceItemType;
  name: string;
  description: string | null;
  version: string;
  publisher_id: string | null;
  tags: string[] | null;
  repository_url: string | null;
  created_at: Date;
  yanked_at: Date | null;
  downloads: number;
}

export interface MarketplaceSummaryRow extends MarketplaceItemRow {
  downloads_all_versions: number;
}

export interface MarketplaceDetailRow extends MarketplaceItemRow {
  /** Null for a listing that only points to its repository_url (migration 0017). */
  manifest: Record<string, unknown> | null;
}

const summaryColumns = (alias: string) =>
  [
    'id',
    'item_type',
    'name',
    'description',
    'version',
    'publisher_id',
    'tags',
    'repository_url',
    'created_at',
    'yanked_at',
    'downloads',
  ]
    .map((c) => `${alias}.${c}`)
    .join(', ');

const detailColumns = `${summaryColumns('m')}, m.manifest`;

/** Downloads of every version of the row's name. */
const downloadsAllVersions = (alias: string) =>
  `(SELECT coalesce(sum(d.downloads), 0)::bigint FROM marketplace_items d WHERE d.name = ${alias}.name) AS downloads_all_versions`;

/**
 * Serialises publishes of one name for the rest of the transaction, so the checks on the
 * name's earlier versions (its type, its publisher) cannot race a concurrent first publish.
 */
export async function lockMarketplaceName(tx: Queryable, name: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext('devart.marketplace:' || $1))`, [name]);
}

/**
 * Serialises installs of one item for the rest of the transaction, so two concurrent installs
 * under one name find each other's workflow instead of creating two.
 */
export async function lockMarketplaceInstall(tx: Queryable, itemId: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext('devart.marketplace-install:' || $1))`, [itemId]);
}

/** The type and publisher of a name's first version, which own the name. */
export async function marketplaceNameOwner(
  db: Queryable,
  name: string,
): Promise<{ item_type: MarketplaceItemType; publisher_id: string | null } | undefined> {
  const { rows } = await db.query<{ item_type: MarketplaceItemType; publisher_id: string | null }>(
    `SELECT item_type, publisher_id FROM marketplace_items WHERE name = $1 ORDER BY created_at, id LIMIT 1`,
    [name],
  );
  return rows[0];
}

/**
 * Inserts one version. A duplicate name+version fails on the table's UNIQUE (name, version)
 * with SQLSTATE 23505, which is what decides concurrent publishes.
 */
export async function insertMarketplaceItem(
  db: Queryable,
  input: {
    itemType: MarketplaceItemType;
    name: string;
    version: string;
    description: string | null;
    publisherId: string;
    tags: string[];
    repositoryUrl: string | null;
    manifest: Record<string, unknown> | null;
  },
): Promise<MarketplaceDetailRow> {
  const { rows } = await db.query<MarketplaceDetailRow>(
    `INSERT INTO marketplace_items AS m (item_type, name, version, description, publisher_id, tags, repository_url, manifest)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb)
     RETURNING ${detailColumns}`,
    [
      input.itemType,
      input.name,
      input.version,
      input.description,
      input.publisherId,
      JSON.stringify(input.tags),
      input.repositoryUrl,
      // SQL NULL, not the JSON null that JSON.stringify(null) would store.
      input.manifest === null ? null : JSON.stringify(input.manifest),
    ],
  );
  return rows[0]!;
}

export async function getMarketplaceItem(
  db: Queryable,
  id: string,
): Promise<MarketplaceDetailRow | undefined> {
  const { rows } = await db.query<MarketplaceDetailRow>(
    `SELECT ${detailColumns} FROM marketplace_items m WHERE m.id = $1`,
    [id],
  );
  return rows[0];
}

export async function getMarketplaceItemByVersion(
  db: Queryable,
  name: string,
  version: string,
): Promise<MarketplaceDetailRow | undefined> {
  const { rows } = await db.query<MarketplaceDetailRow>(
    `SELECT ${detailColumns} FROM marketplace_items m WHERE m.name = $1 AND m.version = $2`,
    [name, version],
  );
  return rows[0];
}

/** Every version of a name, yanked ones too, by semver precedence, newest first. */
export async function listMarketplaceVersions(db: Queryable, name: string): Promise<MarketplaceSummaryRow[]> {
  const { rows } = await db.query<MarketplaceSummaryRow>(
    `SELECT ${summaryColumns('m')}, ${downloadsAllVersions('m')}
     FROM marketplace_items m WHERE m.name = $1
     ORDER BY m.version_key COLLATE "C" DESC NULLS LAST, m.created_at DESC, m.id`,
    [name],
  );
  return rows;
}

/**
 * Yanks a version: hidden from search from now on, still resolvable by id and exact version.
 * Guarded so only its publisher or an admin can; yanking twice keeps the first time.
 */
export async function yankMarketplaceItem(
  db: Queryable,
  id: string,
  by: { userId: string; isAdmin: boolean },
): Promise<
  | { outcome: 'yanked'; item: MarketplaceDetailRow; yanked_now: boolean }
  | { outcome: 'forbidden' | 'not_found' }
> {
  // The row lock makes concurrent yanks agree on which one yanked it (yanking again keeps the first time).
  const { rows } = await db.query<MarketplaceDetailRow & { yanked_now: boolean }>(
    `WITH previous AS (SELECT id, yanked_at FROM marketplace_items WHERE id = $1 FOR UPDATE)
     UPDATE marketplace_items m SET yanked_at = coalesce(m.yanked_at, now())
     FROM previous
     WHERE m.id = previous.id AND ($3 OR m.publisher_id = $2)
     RETURNING ${detailColumns}, previous.yanked_at IS NULL AS yanked_now`,
    [id, by.userId, by.isAdmin],
  );
  const row = rows[0];
  if (row) {
    const { yanked_now, ...item } = row;
    return { outcome: 'yanked', item, yanked_now };
  }
  return (await getMarketplaceItem(db, id)) ? { outcome: 'forbidden' } : { outcome: 'not_found' };
}

/** Counts one install; returns the item as it is after the count. */
export async function countMarketplaceDownload(
  db: Queryable,
  id: string,
): Promise<MarketplaceDetailRow | undefined> {
  const { rows } = await db.query<MarketplaceDetailRow>(
    `UPDATE marketplace_items m SET downloads = m.downloads + 1 WHERE m.id = $1 RETURNING ${detailColumns}`,
    [id],
  );
  return rows[0];
}

export interface MarketplaceQualityRow {
  installs: number;
  runs: number;
  completed: number;
  failed: number;
  success_rate: number | null;
  median_duration_ms: number | null;
  median_cost: string | null;
}

/** How the runs of workflows installed from an item went (cancelled runs count in neither rate). */
export async function marketplaceQuality(db: Queryable, itemId: string): Promise<MarketplaceQualityRow> {
  const { rows } = await db.query<MarketplaceQualityRow>(
    `SELECT count(DISTINCT w.id)::int AS installs,
            count(r.id)::int AS runs,
            count(r.id) FILTER (WHERE r.status = 'COMPLETED')::int AS completed,
            count(r.id) FILTER (WHERE r.status = 'FAILED')::int AS failed,
            (count(r.id) FILTER (WHERE r.status = 'COMPLETED'))::float8
              / nullif(count(r.id) FILTER (WHERE r.status IN ('COMPLETED', 'FAILED')), 0) AS success_rate,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.end_time - r.start_time) * 1000)
              FILTER (WHERE r.status = 'COMPLETED') AS median_duration_ms,
            (percentile_disc(0.5) WITHIN GROUP (ORDER BY r.total_cost)
              FILTER (WHERE r.status = 'COMPLETED'))::text AS median_cost
     FROM workflows w LEFT JOIN workflow_runs r ON r.workflow_id = w.id
     WHERE w.marketplace_item_id = $1`,
    [itemId],
  );
  return rows[0]!;
}

export type MarketplaceSortKey = 'relevance' | 'newest' | 'name' | 'downloads';

const byName: KeysetColumn = { expr: 'name COLLATE "C"', type: 'text', desc: false };
const byVersion: KeysetColumn = { expr: 'version_key COLLATE "C"', type: 'text', desc: true };
const byId: KeysetColumn = { expr: 'id', type: 'uuid', desc: false };

/** Every ordering ends in the id, so positions are total and a cursor never skips or repeats. */
const sortColumns: Record<MarketplaceSortKey, KeysetColumn[]> = {
  relevance: [{ expr: 'rank', type: 'real', desc: true }, byName, byVersion, byId],
  newest: newestFirst('created_at'),
  name: [byName, byVersion, byId],
  downloads: [{ expr: 'downloads_all_versions', type: 'bigint', desc: true }, byName, byVersion, byId],
};

/**
 * The order of a search with this sort: a caller checks a cursor against its column types before
 * passing it as `after`, since a value that does not cast is a query error.
 */
export function marketplaceOrder(sort: MarketplaceSortKey): readonly KeysetColumn[] {
  return sortColumns[sort];
}

export interface MarketplaceSearch {
  /** Prefix terms, all required: `['ci', 'pipe']` matches "CI pipelines". */
  terms: string[];
  type?: MarketplaceItemType;
  tags: string[];
  publisherId?: string;
  sort: MarketplaceSortKey;
  versions: 'latest' | 'all';
  /** The sort values of the last row of the previous page, as `next` returned them. */
  after?: string[];
  limit: number;
}

/**
 * Search over the versions that are not yanked: filters first (GIN on tags and on the
 * full-text vector), then with `versions: 'latest'` the newest matching version of each name
 * (releases before pre-releases, by semver precedence), then keyset pagination on the sort.
 */
export async function searchMarketplace(
  db: Queryable,
  search: MarketplaceSearch,
): Promise<{ items: MarketplaceSummaryRow[]; next?: string[] }> {
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const where = ['m.yanked_at IS NULL'];
  let rank = '0::real';
  if (search.terms.length > 0) {
    const query = `to_tsquery('english', ${param(search.terms.map((t) => `${t}:*`).join(' & '))})`;
    where.push(`m.search @@ ${query}`);
    rank = `ts_rank(m.search, ${query})`;
  }
  if (search.type) where.push(`m.item_type = ${param(search.type)}`);
  if (search.tags.length > 0) where.push(`m.tags @> ${param(JSON.stringify(search.tags))}::jsonb`);
  if (search.publisherId) where.push(`m.publisher_id = ${param(search.publisherId)}`);

  const page = keysetQuery(sortColumns[search.sort], search.after, param);
  const picked =
    search.versions === 'latest'
      ? `SELECT DISTINCT ON (name) * FROM matched
         ORDER BY name, (version ~ '^[^+]*-'), version_key COLLATE "C" DESC`
      : 'SELECT * FROM matched';
  const limit = param(search.limit + 1);
  const { rows } = await db.query<
    MarketplaceSummaryRow & { rank: number; version_key: string; keyset_position: string[] }
  >(
    `WITH matched AS (
       SELECT ${summaryColumns('m')}, m.version_key, ${rank} AS rank
       FROM marketplace_items m WHERE ${where.join(' AND ')}
     ), picked AS (${picked}),
     scored AS (SELECT p.*, ${downloadsAllVersions('p')} FROM picked p)
     SELECT *, ${page.position}
     FROM scored WHERE ${page.after}
     ORDER BY ${page.orderBy}
     LIMIT ${limit}`,
    params,
  );
  const { items, next } = keysetPage(rows, search.limit);
  return { items: items.map(({ rank: _r, version_key: _v, ...item }) => item), next };
}

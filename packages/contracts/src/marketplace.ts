import semver from 'semver';
import { z } from 'zod';
import { Capability, JsonObject, queryInt, Uuid } from './common';
import { Workflow } from './workflows';

const slugPart = '[a-z0-9][a-z0-9._-]{0,63}';

/** A package-style name: a slug, optionally under an `@scope/`. */
export const MarketplaceItemName = z
  .string()
  .regex(new RegExp(`^(@${slugPart}/)?${slugPart}$`), {
    error:
      'must be a lowercase slug (a-z, 0-9, ".", "_", "-"; at most 64 characters), optionally under an @scope/',
  })
  .meta({ example: '@acme/ci-pipeline' });

/** A version as the `semver` package parses it, in its canonical form (no leading "v"). */
export const SemverVersion = z
  .string()
  .max(256)
  .refine((v) => semver.valid(v) === v, {
    error: 'must be a semantic version such as 1.2.3 or 2.0.0-rc.1 (semver.org, no leading "v")',
  })
  .meta({ example: '1.4.0' });

export const MarketplaceTag = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._+#-]{0,31}$/, {
    error: 'must be lowercase (a-z, 0-9, ".", "_", "+", "#", "-"), 1 to 32 characters',
  })
  .meta({ example: 'ci' });

export const MarketplaceItemType = z.enum(['agent', 'workflow']);
export type MarketplaceItemType = z.infer<typeof MarketplaceItemType>;

/** An https:// URL that carries no user name or password. */
export const RepositoryUrl = z
  .string()
  .max(2000)
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        return url.protocol === 'https:' && url.username === '' && url.password === '' && url.hostname !== '';
      } catch {
        return false;
      }
    },
    { error: 'must be an https:// URL without credentials, e.g. https://github.com/acme/ci' },
  )
  .meta({ example: 'https://github.com/acme/ci-pipeline' });

/** What an agent item describes: the capabilities it serves and how to run it. */
export const AgentManifest = z
  .strictObject({
    capabilities: z.array(Capability).min(1).max(50),
    image: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._\-/:@]{0,254}$/, { error: 'must be a container image reference' })
      .optional()
      .meta({ example: 'ghcr.io/acme/lint-agent:1.4.0' }),
    resources: z
      .strictObject({
        cpu: z.int().min(10).max(64_000).meta({ description: 'millicores (1000 = one core)' }),
        memory: z.int().min(16).max(262_144).meta({ description: 'MiB' }),
      })
      .partial()
      .optional()
      .meta({ description: 'What one instance of the agent needs.' }),
  })
  .meta({ id: 'AgentManifest' });
export type AgentManifest = z.infer<typeof AgentManifest>;

export const PublishMarketplaceItemBody = z
  .strictObject({
    item_type: MarketplaceItemType,
    name: MarketplaceItemName,
    version: SemverVersion,
    description: z.string().max(4000).optional(),
    tags: z
      .array(MarketplaceTag)
      .max(20)
      .refine((tags) => new Set(tags).size === tags.length, { error: 'must not repeat a tag' })
      .optional(),
    repository_url: RepositoryUrl.optional(),
    manifest: JsonObject.optional().meta({
      description:
        'For a workflow: the body of POST /api/workflows, checked the same way. For an agent: an AgentManifest. ' +
        'Without it the item is a listing: searchable, pointing to its repository_url, not installable.',
    }),
    // Listed so that a forged publisher is named in the 400 rather than passed over.
    publisher_id: z
      .unknown()
      .optional()
      .refine((value) => value === undefined, { error: 'is taken from your token: a body must not carry it' })
      .meta({ description: 'Never sent: the publisher is the authenticated user.' }),
  })
  .refine((body) => body.manifest !== undefined || body.repository_url !== undefined, {
    path: ['manifest'],
    error: 'is required unless repository_url is given: a listing without a manifest must say where to look',
  })
  .meta({
    id: 'PublishMarketplaceItemBody',
    example: {
      item_type: 'workflow',
      name: '@acme/ci-pipeline',
      version: '1.0.0',
      description: 'Lint and test a branch, then report.',
      tags: ['ci', 'testing'],
      repository_url: 'https://github.com/acme/ci-pipeline',
      manifest: {
        name: 'ci-pipeline',
        variables: { branch: { type: 'string', required: true } },
        steps: [
          { key: 'lint', title: 'Lint {{vars.branch}}', capability: 'shell', payload: { command: ['true'] } },
          { key: 'test', title: 'Test', capability: 'echo', depends_on: ['lint'] },
        ],
      },
    },
  });
export type PublishMarketplaceItemBody = z.infer<typeof PublishMarketplaceItemBody>;

const itemFields = {
  id: Uuid,
  item_type: MarketplaceItemType,
  name: z.string(),
  description: z.string().nullable(),
  version: z.string(),
  publisher_id: Uuid.nullable(),
  tags: z.array(z.string()).nullable(),
  repository_url: z.string().nullable(),
  created_at: z.string(),
  yanked_at: z.string().nullable(),
  downloads: z.int().meta({ description: 'Installs of this version.' }),
};

export const MarketplaceItemSummary = z
  .object({
    ...itemFields,
    downloads_all_versions: z.int().meta({ description: 'Installs of every version of this name.' }),
  })
  .meta({ id: 'MarketplaceItemSummary' });
export type MarketplaceItemSummary = z.infer<typeof MarketplaceItemSummary>;

export const MarketplaceQuality = z
  .object({
    installs: z.int().meta({ description: 'Workflows installed from this item.' }),
    runs: z.int(),
    completed: z.int(),
    failed: z.int(),
    success_rate: z.number().nullable().meta({ description: 'completed / (completed + failed)' }),
    median_duration_ms: z.number().nullable().meta({ description: 'Of completed runs.' }),
    median_cost: z.string().nullable().meta({ description: 'Of completed runs, exact decimal.' }),
  })
  .meta({ id: 'MarketplaceQuality' });
export type MarketplaceQuality = z.infer<typeof MarketplaceQuality>;

export const MarketplaceItem = z
  .object({
    ...itemFields,
    manifest: JsonObject.nullable().meta({
      description: 'Null for a listing: it only points to its repository_url, and installing it is 409.',
    }),
    quality: MarketplaceQuality.nullable().meta({
      description:
        'For a workflow item: how the runs of workflows installed from it went, across installations of this platform. Null for agents.',
    }),
  })
  .meta({ id: 'MarketplaceItem' });
export type MarketplaceItem = z.infer<typeof MarketplaceItem>;

export const MarketplacePage = z
  .object({ items: z.array(MarketplaceItemSummary), next_cursor: z.string().nullable() })
  .meta({ id: 'MarketplacePage' });
export type MarketplacePage = z.infer<typeof MarketplacePage>;

export const MarketplaceSort = z.enum(['relevance', 'newest', 'name', 'downloads']);
export type MarketplaceSort = z.infer<typeof MarketplaceSort>;

const tagList = z
  .string()
  .max(700)
  .transform((value, ctx) => {
    const tags = value
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    for (const tag of tags) {
      if (!MarketplaceTag.safeParse(tag).success) {
        ctx.addIssue({ code: 'custom', message: `"${tag}" is not a tag (lowercase, 1 to 32 characters)` });
        return z.NEVER;
      }
    }
    return tags;
  });

export const MarketplaceSearchQuery = z.strictObject({
  q: z
    .string()
    .trim()
    .max(200)
    .optional()
    .meta({ description: 'Full-text search of names and descriptions.' }),
  type: MarketplaceItemType.optional(),
  tags: tagList.optional().meta({ description: 'Comma-separated: items carrying all of them.' }),
  publisher: Uuid.optional().meta({ description: 'The publisher’s user id.' }),
  sort: MarketplaceSort.optional().meta({
    description: 'Default: relevance with q, newest without. relevance needs q.',
  }),
  versions: z
    .enum(['latest', 'all'])
    .default('latest')
    .meta({ description: 'latest: the newest matching version per name (releases before pre-releases).' }),
  cursor: z.string().max(1000).optional(),
  limit: queryInt({ min: 1, max: 100 }).default(20),
});
export type MarketplaceSearchQuery = z.infer<typeof MarketplaceSearchQuery>;

export const MarketplaceItemIdParams = z.strictObject({ itemId: Uuid });
export const MarketplaceNameParams = z.strictObject({ name: MarketplaceItemName });
export const MarketplaceVersionParams = z.strictObject({ name: MarketplaceItemName, version: SemverVersion });

export const MarketplaceVersions = z
  .object({
    name: z.string(),
    item_type: MarketplaceItemType,
    latest: z
      .string()
      .nullable()
      .meta({ description: 'The version search shows; null when all are yanked.' }),
    versions: z
      .array(MarketplaceItemSummary)
      .meta({ description: 'Every version, yanked too, by semver precedence, newest first.' }),
  })
  .meta({ id: 'MarketplaceVersions' });
export type MarketplaceVersions = z.infer<typeof MarketplaceVersions>;

export const InstallMarketplaceItemBody = z
  .strictObject({
    workflow_name: z
      .string()
      .trim()
      .min(1)
      .max(200)
      .optional()
      .meta({ description: 'Name of the installed workflow (default: the manifest’s name).' }),
  })
  .meta({ id: 'InstallMarketplaceItemBody' });
export type InstallMarketplaceItemBody = z.infer<typeof InstallMarketplaceItemBody>;

export const MarketplaceInstall = z
  .object({
    item_id: Uuid,
    item_type: MarketplaceItemType,
    name: z.string(),
    version: z.string(),
    downloads: z.int(),
    warnings: z.array(z.string()),
    workflow: Workflow.optional().meta({
      description:
        'The workflow of this version in this installation (workflow items): created now, or the one an earlier install made.',
    }),
    installation: z
      .enum(['created', 'existing'])
      .optional()
      .meta({
        description:
          'Workflow items: created (201) the first time a version is installed under a name; existing (200) when ' +
          'a workflow of that name was installed from this version before — answered again, nothing counted.',
      }),
    agent: z
      .object({
        manifest: AgentManifest,
        command: z.string().meta({ description: 'The devart agent command that runs it.' }),
        steps: z.array(z.string()),
      })
      .optional(),
  })
  .meta({ id: 'MarketplaceInstall' });
export type MarketplaceInstall = z.infer<typeof MarketplaceInstall>;

export const WorkflowExportQuery = z.strictObject({
  name: MarketplaceItemName.optional().meta({
    description: 'The marketplace name (default: the workflow’s name as a slug).',
  }),
  version: SemverVersion.optional().meta({ description: 'Default 1.0.0.' }),
});
export type WorkflowExportQuery = z.infer<typeof WorkflowExportQuery>;

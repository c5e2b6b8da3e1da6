import {
  InstallMarketplaceItemBody,
  MarketplaceInstall,
  MarketplaceItem,
  MarketplaceItemIdParams,
  MarketplaceNameParams,
  MarketplacePage,
  MarketplaceSearchQuery,
  MarketplaceVersionParams,
  MarketplaceVersions,
  PublishMarketplaceItemBody,
} from '@devart/contracts';
import type { Db } from '@devart/db';
import { currentUser } from '../middleware/auth';
import {
  findItem,
  findItemVersion,
  installItem,
  listVersions,
  publishItem,
  searchItems,
  yankItem,
} from '../services/marketplace';
import { createRouter, protectedRoute } from './route-kit';

export function marketplaceRoutes({
  db,
  amqpPrefix = '',
}: {
  db: Db;
  /** The broker's topology prefix (AMQP_PREFIX), which the install command passes to the agent. */
  amqpPrefix?: string;
}) {
  const router = createRouter();
  const itemJson = { 'application/json': { schema: MarketplaceItem } };
  const publisherOf = (auth: Parameters<typeof currentUser>[0]) => {
    const user = currentUser(auth);
    return { userId: user.sub, isAdmin: user.role === 'admin' };
  };

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/marketplace',
      tags: ['marketplace'],
      summary: 'Search shared agents and workflows',
      description:
        'Full-text search (prefix terms, ranked) of names and descriptions, filtered by type, tags (all of them) ' +
        'and publisher. Yanked versions are left out; by default each name appears once, as its newest matching ' +
        'version by semver precedence. Cursor pagination: pass next_cursor back with the same filters.',
      action: 'marketplace.read',
      request: { query: MarketplaceSearchQuery },
      responses: {
        200: { description: 'A page of items', content: { 'application/json': { schema: MarketplacePage } } },
      },
    }),
    async (c) => c.json(await searchItems(db, c.req.valid('query')), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/marketplace',
      tags: ['marketplace'],
      summary: 'Publish a version of an agent or a workflow',
      description:
        'The publisher is the authenticated user (a body carrying publisher_id is refused). A workflow ' +
        'manifest passes the checks of POST /api/workflows; without a manifest the item is a listing that ' +
        'points to its repository_url (searchable, not installable). A published name@version never changes: ' +
        'publishing it again is 409. The first version of a name fixes its type and its publisher.',
      action: 'marketplace.publish',
      request: {
        body: { required: true, content: { 'application/json': { schema: PublishMarketplaceItemBody } } },
      },
      responses: { 201: { description: 'Published', content: itemJson } },
      problems: [409],
    }),
    async (c) => c.json(await publishItem(db, c.req.valid('json'), publisherOf(c.get('auth'))), 201),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/marketplace/{itemId}',
      tags: ['marketplace'],
      summary: 'One version, with its manifest and, for workflows, the quality of its installed runs',
      action: 'marketplace.read',
      request: { params: MarketplaceItemIdParams },
      responses: { 200: { description: 'The item', content: itemJson } },
      problems: [404],
    }),
    async (c) => c.json(await findItem(db, c.req.valid('param').itemId), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/marketplace/by-name/{name}',
      tags: ['marketplace'],
      summary: 'Every version of a name, yanked ones too, newest first by semver precedence',
      description:
        'A scoped name is sent with its slash encoded: /api/marketplace/by-name/@acme%2Fci-pipeline.',
      action: 'marketplace.read',
      request: { params: MarketplaceNameParams },
      responses: {
        200: {
          description: 'The versions',
          content: { 'application/json': { schema: MarketplaceVersions } },
        },
      },
      problems: [404],
    }),
    async (c) => c.json(await listVersions(db, c.req.valid('param').name), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/marketplace/by-name/{name}/versions/{version}',
      tags: ['marketplace'],
      summary: 'One exact version by name (resolves yanked versions too)',
      action: 'marketplace.read',
      request: { params: MarketplaceVersionParams },
      responses: { 200: { description: 'The item', content: itemJson } },
      problems: [404],
    }),
    async (c) => {
      const { name, version } = c.req.valid('param');
      return c.json(await findItemVersion(db, name, version), 200);
    },
  );

  router.openapi(
    protectedRoute({
      method: 'delete',
      path: '/api/marketplace/{itemId}',
      tags: ['marketplace'],
      summary: 'Yank a version: hidden from search, still resolvable by exact version and id',
      description: 'Only the publisher of the version or an admin. Yanking twice keeps the first yanked_at.',
      action: 'marketplace.yank',
      request: { params: MarketplaceItemIdParams },
      responses: {
        200: { description: 'The yanked item', content: itemJson },
      },
      problems: [404],
    }),
    async (c) => c.json(await yankItem(db, c.req.valid('param').itemId, publisherOf(c.get('auth'))), 200),
  );

  router.openapi(
    protectedRoute({
      method: 'post',
      path: '/api/marketplace/{itemId}/install',
      tags: ['marketplace'],
      summary:
        'Install a version: a workflow item becomes a workflow here; an agent item gives the command to run it',
      description:
        'Counts one download. A yanked version still installs (exact versions never disappear), with a warning. ' +
        'A workflow item installed again under the same workflow name answers the workflow the first install ' +
        'made (200, installation: existing, nothing counted); a first install answers 201. A listing without a ' +
        'manifest is 409 naming its repository.',
      action: 'marketplace.install',
      request: {
        params: MarketplaceItemIdParams,
        body: { required: false, content: { 'application/json': { schema: InstallMarketplaceItemBody } } },
      },
      responses: {
        200: {
          description:
            'An agent item’s instructions, or the workflow an earlier install of this version made',
          content: { 'application/json': { schema: MarketplaceInstall } },
        },
        201: {
          description: 'A workflow item installed: the workflow created',
          content: { 'application/json': { schema: MarketplaceInstall } },
        },
      },
      problems: [404, 409],
    }),
    async (c) => {
      const apiUrl = new URL(c.req.url).origin;
      const installed = await installItem(db, c.req.valid('param').itemId, c.req.valid('json') ?? {}, {
        userId: currentUser(c.get('auth')).sub,
        apiUrl,
        amqpPrefix,
      });
      const created = 'installation' in installed && installed.installation === 'created';
      return created ? c.json(installed, 201) : c.json(installed, 200);
    },
  );

  return router;
}

import { Overview } from '@devart/contracts';
import { type Db, readOverview } from '@devart/db';
import { createRouter, protectedRoute } from './route-kit';

/** GET /api/overview: the console's Overview page in one cheap answer (readOverview). */
export function overviewRoutes({ db }: { db: Db }) {
  const router = createRouter();
  router.openapi(
    protectedRoute({
      action: 'tasks.list',
      method: 'get',
      path: '/api/overview',
      tags: ['tasks'],
      summary:
        'Tasks by status, the last 15 minutes of throughput, the outbox backlog, agents and the newest events',
      description:
        'One statement over indexes: cheap enough to ask every second. Recent failures are looked for among the last 10,000 events.',
      responses: {
        200: { description: 'The overview', content: { 'application/json': { schema: Overview } } },
      },
    }),
    async (c) => c.json(await readOverview(db), 200),
  );
  return router;
}

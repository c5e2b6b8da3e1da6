import { type Db, migrationStatus } from '@devart/db';
import { createRoute, z } from '@hono/zod-openapi';
import { ProblemError } from '../problem';
import { createRouter } from './route-kit';

const Health = z.object({ status: z.literal('ok') });
const Ready = z.object({ status: z.literal('ready'), database: z.enum(['pglite', 'postgres']) });

export function healthRoutes({ db }: { db: Db }) {
  const router = createRouter();

  router.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      tags: ['health'],
      summary: 'The process is up (liveness)',
      responses: { 200: { description: 'Up', content: { 'application/json': { schema: Health } } } },
    }),
    (c) => c.json({ status: 'ok' as const }, 200),
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ready',
      tags: ['health'],
      summary: 'The database answers and every migration is applied (readiness)',
      responses: {
        200: { description: 'Ready', content: { 'application/json': { schema: Ready } } },
        503: { description: 'Not ready; the problem says why' },
      },
    }),
    async (c) => {
      let pending: string[];
      try {
        pending = (await migrationStatus(db)).pending;
      } catch (error) {
        throw new ProblemError('not_ready', `The database does not answer: ${(error as Error).message}`);
      }
      if (pending.length > 0) {
        throw new ProblemError(
          'not_ready',
          `Migrations not applied yet: ${pending.join(', ')}. Run "devart migrate".`,
        );
      }
      return c.json({ status: 'ready' as const, database: db.kind }, 200);
    },
  );

  return router;
}

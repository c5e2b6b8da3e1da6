import { Integrations } from '@devart/contracts';
import type { Db } from '@devart/db';
import { type IntegrationInfo, integrationsReport } from '../services/integrations';
import { createRouter, protectedRoute } from './route-kit';

/** GET /api/integrations (admin): which integrations are configured and how their deliveries fare. */
export function integrationRoutes({
  db,
  integrations,
}: {
  db: Db;
  integrations: readonly IntegrationInfo[];
}) {
  const router = createRouter();
  router.openapi(
    protectedRoute({
      action: 'integrations.read',
      method: 'get',
      path: '/api/integrations',
      tags: ['integrations'],
      summary: 'Configured integrations (Telegram, GitHub) and the health of their deliveries',
      description:
        'Settings as the answering API process has them (never a secret: tokens and keys show only `set` or `unset`), and for each delivery channel its backlog, failures, last success and last error, across every replica.',
      responses: {
        200: { description: 'The integrations', content: { 'application/json': { schema: Integrations } } },
      },
    }),
    async (c) => c.json(await integrationsReport(db, integrations), 200),
  );
  return router;
}

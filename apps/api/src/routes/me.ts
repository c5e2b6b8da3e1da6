import { Session } from '@devart/contracts';
import { currentPrincipal } from '../middleware/auth';
import { createRouter, protectedRoute } from './route-kit';

/**
 * GET /api/me: who the credential belongs to. The console calls it to check a pasted token and to
 * show who is signed in. It shares `events.subscribe` — viewer and up, and agents — because
 * whoever may use the console must be able to follow its event stream, and an agent key is answered
 * as such instead of with a 403 the sign-in page could not explain.
 */
export function meRoutes() {
  const router = createRouter();
  router.openapi(
    protectedRoute({
      action: 'events.subscribe',
      method: 'get',
      path: '/api/me',
      tags: ['auth'],
      summary: 'Who is calling: a user’s subject, role and token expiry, or the agent a key belongs to',
      responses: {
        200: { description: 'The caller', content: { 'application/json': { schema: Session } } },
      },
    }),
    (c) => {
      const principal = currentPrincipal(c.get('auth'));
      if (principal.kind === 'agent') {
        return c.json(
          { kind: 'agent' as const, agent_id: principal.agent.id, name: principal.agent.name },
          200,
        );
      }
      const { user } = principal;
      const exp = user.claims.exp;
      return c.json(
        {
          kind: 'user' as const,
          subject: user.sub,
          email: user.email,
          // authorize has refused a token without a role already.
          role: principal.role!,
          expires_at: typeof exp === 'number' ? new Date(exp * 1000).toISOString() : null,
        },
        200,
      );
    },
  );
  return router;
}

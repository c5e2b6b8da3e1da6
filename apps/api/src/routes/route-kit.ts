import { Problem } from '@devart/contracts';
import type { Action } from '@devart/core';
import { createRoute, OpenAPIHono, type RouteConfig, z } from '@hono/zod-openapi';
import { type AuthEnv, authorize } from '../middleware/auth';
import { readJsonBody, refuseBody, refuseUnstorableParams } from '../middleware/json-body';
import type { RequestLogEnv } from '../middleware/request-log';
import { validationProblem } from '../problem';

export type AppEnv = AuthEnv & RequestLogEnv;

const problemContent = { 'application/problem+json': { schema: Problem } } as const;

/** The problem answers every protected route may give, for the OpenAPI document. */
const problemResponses = {
  400: { description: 'Invalid request (the problem names each field)', content: problemContent },
  401: { description: 'No valid credential', content: problemContent },
  403: { description: 'The role may not do this', content: problemContent },
} as const;

/** The problem answers only some routes give; a route names the ones it may give in `problems`. */
const routeProblems = {
  404: { description: 'No such resource', content: problemContent },
  409: { description: 'The resource is not in a state that allows this', content: problemContent },
  429: {
    description: 'Too many at once for this caller; the problem says what the limit is',
    content: problemContent,
  },
  503: {
    description: 'A backend this needs is not available here; the problem says why',
    content: problemContent,
  },
} as const;

type RouteProblem = keyof typeof routeProblems;

// What a route that declares no query accepts: nothing, so `?anything=1` is named in a 400 as on every other route.
const NoQuery = z.strictObject({});

/**
 * Declared on a route: the fields whose text PostgreSQL cannot hold (NUL, unpaired surrogates)
 * is stored escaped instead of refused, and whether a bad batch item is refused on its own.
 * Both appear in the OpenAPI document, where agent authors look.
 */
interface BodyRules {
  'x-devart-stored-escaped'?: readonly string[];
  'x-devart-batch-items'?: boolean;
}

function bodyReader(route: RouteConfig & BodyRules) {
  if (!route.request?.body) return refuseBody();
  return readJsonBody({
    storedEscaped: route['x-devart-stored-escaped'],
    itemsOnTheirOwn: route['x-devart-batch-items'],
  });
}

/**
 * A router whose validation failures become 400 problems naming every bad field, whose routes
 * refuse unknown query parameters even when they declare no query at all, and whose bodies are
 * read strictly (readJsonBody), or refused where the route declares none.
 * @example const router = createRouter(); router.openapi(protectedRoute({ … }), handler);
 */
export function createRouter(): OpenAPIHono<AppEnv> {
  const router = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationProblem(result.target, result.error.issues);
    },
  });
  const openapi = router.openapi;
  router.openapi = ((route, ...rest) =>
    openapi(
      {
        ...route,
        request: { ...route.request, query: route.request?.query ?? NoQuery },
        // After the route's own middleware, so 401/403 come before any complaint about the body.
        middleware: [...[route.middleware ?? []].flat(), refuseUnstorableParams(), bodyReader(route)],
      },
      ...rest,
    )) as typeof openapi;
  return router;
}

const bearerAuth = [{ bearerAuth: [] }];

/** What a protected route declares: an operation without security or middleware, plus its RBAC action. */
export type ProtectedRouteConfig<P extends RouteProblem> = Omit<RouteConfig, 'security' | 'middleware'> &
  BodyRules & {
    /** The RBAC matrix entry (packages/core/src/rbac.ts) that decides who may call it. */
    action: Action;
    /** The problem answers beyond 400/401/403 this route may give. */
    problems?: readonly P[];
  };

/**
 * A route behind the RBAC matrix, its action named once: the action guards the route
 * (`authorize`, so 401 without a credential and 403 for a role the matrix leaves out) and is
 * published as `x-devart-action`, which rbac.test.ts walks to call every operation as every role.
 * The bearer security and the 400/401/403 problem answers come with it; `problems` adds 404, 409
 * or 503.
 * @example
 * router.openapi(
 *   protectedRoute({ action: 'tasks.read', method: 'get', path: '/api/tasks/{taskId}',
 *     request: { params: TaskIdParams }, responses: { 200: { … } }, problems: [404] }),
 *   async (c) => c.json(await findTask(db, c.req.valid('param').taskId), 200),
 * );
 */
export function protectedRoute<
  Path extends string,
  R extends ProtectedRouteConfig<P>,
  P extends RouteProblem = never,
>(config: R & { path: Path; problems?: readonly P[] }) {
  const { action, problems = [], responses, ...route } = config;
  const declared = {
    ...route,
    'x-devart-action': action,
    security: bearerAuth,
    middleware: [authorize(action)],
    responses: {
      ...responses,
      ...problemResponses,
      ...Object.fromEntries(problems.map((code) => [code, routeProblems[code]])),
    } as Omit<R['responses'], keyof typeof problemResponses | P> &
      typeof problemResponses &
      Pick<typeof routeProblems, P>,
  };
  return createRoute(
    declared as Omit<R, 'action' | 'problems' | 'responses'> & typeof declared & { path: Path },
  );
}

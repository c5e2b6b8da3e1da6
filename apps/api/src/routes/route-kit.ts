import { Problem } from '@devart/contracts';
import { OpenAPIHono, type RouteConfig, z } from '@hono/zod-openapi';
import type { AuthEnv } from '../middleware/auth';
import { readJsonBody, refuseBody, refuseUnstorableParams } from '../middleware/json-body';
import { validationProblem } from '../problem';

export type AppEnv = AuthEnv;

const problemContent = { 'application/problem+json': { schema: Problem } } as const;

/** The problem answers every protected route may give, for the OpenAPI document. */
export const problemResponses = {
  400: { description: 'Invalid request (the problem names each field)', content: problemContent },
  401: { description: 'No valid credential', content: problemContent },
  403: { description: 'The role may not do this', content: problemContent },
} as const;

export const notFound = { 404: { description: 'No such resource', content: problemContent } } as const;
export const unavailable = {
  503: {
    description: 'A backend this needs is not available here; the problem says why',
    content: problemContent,
  },
} as const;
export const conflict = {
  409: { description: 'The resource is not in a state that allows this', content: problemContent },
} as const;

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
 * @example const router = createRouter(); router.openapi(createRoute({ … }), handler);
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

export const bearerAuth = [{ bearerAuth: [] }];

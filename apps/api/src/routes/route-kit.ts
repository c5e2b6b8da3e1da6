import { Problem } from '@devart/contracts';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { AuthEnv } from '../middleware/auth';
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

/** A router whose validation failures become 400 problems naming every bad field. */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationProblem(result.target, result.error.issues);
    },
  });
}

export const bearerAuth = [{ bearerAuth: [] }];

import type { UserRole } from '@devart/core';
import pino from 'pino';
import { type AppDeps, createApp } from '../apps/api/src/app';
import { createTokenVerifier, signUserToken } from '../apps/api/src/auth/jwt';
import { createTestDatabase, type TestDatabase } from './db';
import { createTestSandboxes, type TestSandboxes } from './sandbox';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

export interface TestApi extends TestDatabase {
  app: ReturnType<typeof createApp>;
  sandboxes: TestSandboxes;
  token(role: UserRole, options?: { sub?: string; ttlSeconds?: number }): Promise<string>;
  /** Sends a JSON request as `auth` (a role's token, an agent key, a raw Authorization value, or nobody). */
  call(
    method: string,
    path: string,
    options?: { auth?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
}

/**
 * Another API process over an existing test database, as a second replica configured otherwise
 * would be: the test secret, a silent logger, and `deps` on top.
 */
export function createAppOver(db: AppDeps['db'], deps: Partial<AppDeps> = {}): ReturnType<typeof createApp> {
  return createApp({
    db,
    verifyToken: createTokenVerifier({ secret: TEST_JWT_SECRET }),
    logger: pino({ level: 'silent' }),
    recordUsers: true,
    ...deps,
  });
}

/** The HTTP API over a database of its own, called in-process (no port). */
export async function createTestApi(): Promise<TestApi> {
  const database = await createTestDatabase();
  const logger = pino({ level: 'silent' });
  const sandboxes = createTestSandboxes(database.db, logger);
  const app = createApp({
    db: database.db,
    verifyToken: createTokenVerifier({ secret: TEST_JWT_SECRET }),
    logger,
    recordUsers: true,
    sandboxes: sandboxes.service,
  });
  const token = (role: UserRole, options: { sub?: string; ttlSeconds?: number } = {}) =>
    signUserToken(TEST_JWT_SECRET, { role, sub: options.sub, ttlSeconds: options.ttlSeconds ?? 300 });
  return {
    ...database,
    async drop() {
      await sandboxes.cleanup();
      await database.drop();
    },
    app,
    sandboxes,
    token,
    async call(method, path, { auth, body, headers = {} } = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (auth)
        (init.headers as Record<string, string>).authorization = auth.startsWith('Bearer')
          ? auth
          : `Bearer ${auth}`;
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
      return app.request(path, init);
    },
  };
}

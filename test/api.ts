import type { UserRole } from '@devart/core';
import type { Db } from '@devart/db';
import pino from 'pino';
import { signUserToken } from '../apps/api/src/auth/jwt';
import {
  defaultSettings,
  type PlatformInputs,
  type WiredPlatform,
  wirePlatform,
} from '../apps/api/src/platform';
import { createTestDatabase, type TestDatabase } from './db';
import { createTestSandboxBackend, type TestSandboxes } from './sandbox';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

/** Where test platforms log: nowhere, unless TEST_LOG_LEVEL asks for it. */
export function testLogger(): pino.Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

/** The inputs of wirePlatform a test changes over {@link testPlatformInputs}. */
export type TestPlatformInputs = Partial<Omit<PlatformInputs, 'db' | 'background' | 'broker'>>;

/**
 * wirePlatform's inputs for the HTTP API alone over `db`, as tests share them: the test secret,
 * the configuration's defaults, a silent logger, no sandbox provider; `overrides` on top.
 * @example const { app, close } = await wirePlatform(testPlatformInputs(db, { sandboxes: backend }));
 */
export function testPlatformInputs(db: Db, overrides: TestPlatformInputs = {}): PlatformInputs {
  return {
    db,
    background: false,
    auth: { secret: TEST_JWT_SECRET },
    settings: defaultSettings,
    logger: testLogger(),
    sandboxes: { unavailable: 'This server runs no sandbox provider (SANDBOX_PROVIDER).' },
    ...overrides,
  };
}

export interface TestApi extends TestDatabase {
  app: WiredPlatform['app'];
  sandboxes: TestSandboxes;
  token(role: UserRole, options?: { sub?: string; ttlSeconds?: number }): Promise<string>;
  /** Sends a JSON request as `auth` (a role's token, an agent key, a raw Authorization value, or nobody). */
  call(
    method: string,
    path: string,
    options?: { auth?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
  /**
   * Another API process over the same database, as a second replica configured otherwise would
   * be (its own sandbox backend, exec settings…): the HTTP API alone, closed with this one.
   */
  replica(overrides?: TestPlatformInputs): Promise<WiredPlatform['app']>;
}

/** A user token signed with the test secret. */
export function testToken(
  role: UserRole,
  options: { sub?: string; ttlSeconds?: number } = {},
): Promise<string> {
  return signUserToken(TEST_JWT_SECRET, { role, sub: options.sub, ttlSeconds: options.ttlSeconds ?? 600 });
}

/** {@link TestApi.call} over `app`, in-process (no port). */
export function callOf(app: WiredPlatform['app']): TestApi['call'] {
  return async (method, path, { auth, body, headers = {} } = {}) => {
    const h: Record<string, string> = { ...headers };
    if (auth) h.authorization = auth.startsWith('Bearer') ? auth : `Bearer ${auth}`;
    if (body !== undefined) h['content-type'] ??= 'application/json';
    return app.request(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  };
}

/** Replicas over `db` for {@link TestApi.replica}, and how to close them all. */
export function replicasOver(
  db: Db,
  base: TestPlatformInputs = {},
): { replica: TestApi['replica']; closeReplicas(): Promise<void> } {
  const opened: WiredPlatform[] = [];
  return {
    async replica(overrides = {}) {
      const wired = await wirePlatform(testPlatformInputs(db, { ...base, ...overrides }));
      opened.push(wired);
      return wired.app;
    },
    async closeReplicas() {
      for (const wired of opened.splice(0)) await wired.close();
    },
  };
}

/**
 * The HTTP API over a database of its own, called in-process (no port): wirePlatform without the
 * background loops, with the local sandbox provider over a temporary root.
 */
export async function createTestApi(): Promise<TestApi> {
  const database = await createTestDatabase();
  const sandboxBackend = createTestSandboxBackend();
  const wired = await wirePlatform(testPlatformInputs(database.db, { sandboxes: sandboxBackend.backend }));
  const { replica, closeReplicas } = replicasOver(database.db);
  return {
    ...database,
    async drop() {
      await closeReplicas();
      await wired.close();
      await sandboxBackend.cleanup();
      await database.drop();
    },
    app: wired.app,
    sandboxes: { ...sandboxBackend, service: wired.sandboxes },
    token: testToken,
    call: callOf(wired.app),
    replica,
  };
}

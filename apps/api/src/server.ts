import type { AddressInfo } from 'node:net';
import { connectPostgres, type Db, migrate, openPglite, ownsAuthUsers } from '@devart/db';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';
import { createApp } from './app';
import { createTokenVerifier } from './auth/jwt';
import type { Config } from './config';
import { lockDataDir, pgliteDir, readOrCreateSecret } from './data-dir';

export interface OpenedDatabase {
  db: Db;
  close(): Promise<void>;
}

/** The database the configuration names: PostgreSQL when DATABASE_URL is set, else PGlite in the data directory. */
export async function openDatabase(config: Config): Promise<OpenedDatabase> {
  if (config.DATABASE_URL) {
    const db = connectPostgres(config.DATABASE_URL);
    return { db, close: () => db.close() };
  }
  const unlock = lockDataDir(config.DEVART_DATA_DIR);
  try {
    const db = await openPglite({ dataDir: pgliteDir(config.DEVART_DATA_DIR) });
    return {
      db,
      async close() {
        await db.close();
        unlock();
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}

export interface RunningPlatform {
  url: string;
  port: number;
  secret: string | undefined;
  close(): Promise<void>;
}

/** Migrates, then serves the API until `close()`. */
export async function startPlatform(config: Config, logger: Logger): Promise<RunningPlatform> {
  const database = await openDatabase(config);
  try {
    const report = await migrate(database.db, {
      onApplied: (m) => logger.info({ migration: m.name }, 'migration applied'),
    });
    logger.info({ applied: report.applied.length, database: database.db.kind }, 'database ready');

    if (config.DATABASE_URL && !config.JWT_SECRET && !config.JWT_JWKS_URL) {
      logger.warn(
        'JWT_SECRET is unset: using the secret in the data directory. Every API replica must share one secret; set JWT_SECRET.',
      );
    }
    const secret = config.JWT_SECRET ?? (config.JWT_JWKS_URL ? undefined : readOrCreateSecret(config.DEVART_DATA_DIR));
    const app = createApp({
      db: database.db,
      verifyToken: createTokenVerifier({
        secret,
        jwksUrl: config.JWT_JWKS_URL,
        issuer: config.JWT_ISSUER,
        audience: config.JWT_AUDIENCE,
      }),
      logger,
      recordUsers: await ownsAuthUsers(database.db),
    });

    const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
      s.once('error', reject);
    });
    const port = (server.address() as AddressInfo).port;
    const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      port,
      secret,
      async close() {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Keep-alive sockets would hold close() open until they time out.
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}

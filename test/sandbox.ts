import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from '@devart/db';
import { createLocalProvider, detectBubblewrap, type LocalSandboxProvider } from '@devart/sandbox';
import type { Logger } from 'pino';
import {
  createSandboxService,
  type SandboxBackend,
  type SandboxService,
} from '../apps/api/src/services/sandboxes';

/** Whether this machine runs bubblewrap sandboxes (`.ci/run` installs it). */
export const bubblewrap = await detectBubblewrap();
// CI installs bubblewrap: there, a missing one must fail the run instead of skipping the sandbox tests.
if (!bubblewrap.available && process.env.DEVART_REQUIRE_BWRAP) {
  throw new Error(`DEVART_REQUIRE_BWRAP is set but ${bubblewrap.hint}`);
}

/** A sandbox backend over a temporary root, for wirePlatform: the real local provider when bubblewrap runs here. */
export interface TestSandboxBackend {
  backend: SandboxBackend;
  provider: LocalSandboxProvider;
  rootDir: string;
  /** Terminates every sandbox the provider still has and removes its root. */
  cleanup(): Promise<void>;
}

/** The real local (bubblewrap) provider over a temporary root, or why it cannot run here. */
export function createTestSandboxBackend(): TestSandboxBackend {
  const rootDir = mkdtempSync(join(tmpdir(), 'devart-sandboxes-'));
  const provider = createLocalProvider({ rootDir });
  return {
    backend: bubblewrap.available ? { provider } : { unavailable: bubblewrap.hint },
    provider,
    rootDir,
    async cleanup() {
      for (const id of await provider.list().catch(() => [])) await provider.terminate(id).catch(() => {});
      rmSync(rootDir, { recursive: true, force: true });
    },
  };
}

/** A test backend with the platform's sandbox service over it. */
export interface TestSandboxes extends TestSandboxBackend {
  service: SandboxService;
}

/**
 * The sandbox service alone over a test backend, as another replica's would be (a test of the
 * service itself; a platform's comes from wirePlatform).
 */
export function createTestSandboxes(
  db: Db,
  logger: Logger,
  { providerKey }: { providerKey?: string } = {},
): TestSandboxes {
  const sandboxes = createTestSandboxBackend();
  return {
    ...sandboxes,
    service: createSandboxService({ db, logger, backend: sandboxes.backend, providerKey }),
  };
}

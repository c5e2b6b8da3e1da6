import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from '@devart/db';
import { createLocalProvider, detectBubblewrap, type LocalSandboxProvider } from '@devart/sandbox';
import type { Logger } from 'pino';
import { createSandboxService, type SandboxService } from '../apps/api/src/services/sandboxes';

/** Whether this machine runs bubblewrap sandboxes (`.ci/run` installs it). */
export const bubblewrap = await detectBubblewrap();
// CI installs bubblewrap: there, a missing one must fail the run instead of skipping the sandbox tests.
if (!bubblewrap.available && process.env.DEVART_REQUIRE_BWRAP) {
  throw new Error(`DEVART_REQUIRE_BWRAP is set but ${bubblewrap.hint}`);
}

export interface TestSandboxes {
  service: SandboxService;
  provider: LocalSandboxProvider;
  rootDir: string;
  /** Terminates every sandbox the provider still has and removes its root. */
  cleanup(): Promise<void>;
}

/** The real local (bubblewrap) provider over a temporary root, behind the API's sandbox service. */
export function createTestSandboxes(
  db: Db,
  logger: Logger,
  { providerKey }: { providerKey?: string } = {},
): TestSandboxes {
  const rootDir = mkdtempSync(join(tmpdir(), 'devart-sandboxes-'));
  const provider = createLocalProvider({ rootDir });
  const service = createSandboxService({
    db,
    logger,
    backend: bubblewrap.available ? { provider } : { unavailable: bubblewrap.hint },
    providerKey,
  });
  return {
    service,
    provider,
    rootDir,
    async cleanup() {
      for (const id of await provider.list().catch(() => [])) await provider.terminate(id).catch(() => {});
      rmSync(rootDir, { recursive: true, force: true });
    },
  };
}

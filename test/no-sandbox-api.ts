import pino from 'pino';
import { createSandboxService } from '../apps/api/src/services/sandboxes';
import { createAppOver } from './api';
import type { TestPlatform } from './platform';

/**
 * A second API over the platform's database that cannot provide sandboxes, as a replica started
 * without a provider would be: with `unavailable`, its sandbox service says so (as `devart start`
 * does when bubblewrap is missing); without, the app's own default (no provider configured).
 * Returns a fetch for an SDK agent (`platform.startAgent(agent, callback, { fetch })`).
 */
export function noSandboxFetch(platform: TestPlatform, unavailable?: string): typeof fetch {
  const logger = pino({ level: 'silent' });
  const app = createAppOver(
    platform.db,
    unavailable
      ? { sandboxes: createSandboxService({ db: platform.db, logger, backend: { unavailable } }) }
      : {},
  );
  return ((input: string | URL | Request, init?: RequestInit) =>
    app.request(input instanceof Request ? input : String(input), init)) as typeof fetch;
}

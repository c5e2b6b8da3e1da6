import type { TestPlatform } from './platform';

/**
 * A second API over the platform's database that cannot provide sandboxes, as a replica started
 * without a provider would be: with `unavailable`, its sandbox service says so (as `devart start`
 * does when bubblewrap is missing); without, the test platform's default (no provider configured).
 * Returns a fetch for an SDK agent (`platform.startAgent(agent, callback, { fetch })`).
 */
export async function noSandboxFetch(platform: TestPlatform, unavailable?: string): Promise<typeof fetch> {
  const app = await platform.replica(unavailable ? { sandboxes: { unavailable } } : {});
  return ((input: string | URL | Request, init?: RequestInit) =>
    app.request(input instanceof Request ? input : String(input), init)) as typeof fetch;
}

import { QueryClient } from '@tanstack/react-query';
import { ApiError } from './api';

/**
 * The console's QueryClient. Data is kept fresh by the event stream (lib/live.tsx), so queries are
 * not refetched on a timer; a 4xx is not retried (asking again gets the same answer), a network
 * error or a 5xx/503 is, twice.
 */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 30_000,
        retry: (failures, error) =>
          failures < 2 && !(error instanceof ApiError && error.status >= 400 && error.status < 500),
      },
      mutations: { retry: false },
    },
  });
}

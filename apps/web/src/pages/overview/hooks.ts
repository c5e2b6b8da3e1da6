import type { Overview, PlatformEvent } from '@devart/contracts';
import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import { api } from '../../lib/api';
import { useRecentEvents } from '../../lib/live';
import { queryKeys } from '../../lib/query-keys';

export function useOverview() {
  return useQuery({
    queryKey: queryKeys.overview,
    queryFn: ({ signal }) => api<Overview>('/api/overview', { signal }),
  });
}

/** Newest first, each id once: what the stream brought merged over what the overview read. */
export function mergeEvents(
  a: readonly PlatformEvent[],
  b: readonly PlatformEvent[],
  limit: number,
): PlatformEvent[] {
  const byId = new Map<string, PlatformEvent>();
  for (const e of [...a, ...b]) byId.set(e.id, e);
  return [...byId.values()].sort((x, y) => compareIds(y.id, x.id)).slice(0, limit);
}

/** Event ids are 64-bit integers as strings: compare by length, then as text. */
function compareIds(x: string, y: string): number {
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

/** The activity feed: the overview's newest events, with those that arrived live since on top. */
export function useActivity(overview: Overview | undefined, limit = 20): PlatformEvent[] {
  const live = useRecentEvents();
  return useMemo(() => mergeEvents(live, overview?.recent_events ?? [], limit), [live, overview, limit]);
}

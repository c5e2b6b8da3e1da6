import { PlatformEvent } from '@devart/contracts';
import { type QueryClient, useQueryClient } from '@tanstack/react-query';
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from 'react';
import { useAuth } from './auth';
import { readToken } from './auth-token';
import { invalidationsFor, queryKeys } from './query-keys';
import { openEventStream, type StreamStatus } from './sse';

/** How many events the activity feed keeps. */
export const RECENT_EVENTS = 50;
/** Stale queries are refetched at most this often, so a burst of events costs one refetch a page. */
export const INVALIDATE_EVERY_MS = 500;

type Listener = (event: PlatformEvent) => void;

interface LiveValue {
  status: StreamStatus;
  detail?: string;
  subscribe(listener: Listener): () => void;
}

const LiveContext = createContext<LiveValue | null>(null);

/**
 * Collects query prefixes and invalidates them together, at most once per `everyMs`: the first
 * event after a quiet spell is applied at once, and a burst (a thousand task events in a second)
 * costs each open list one refetch per window, not a thousand.
 */
export function createInvalidator(
  queryClient: QueryClient,
  everyMs = INVALIDATE_EVERY_MS,
  now = () => Date.now(),
) {
  const pending = new Map<string, readonly unknown[]>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastFlush = Number.NEGATIVE_INFINITY;
  const flush = () => {
    timer = undefined;
    lastFlush = now();
    const keys = [...pending.values()];
    pending.clear();
    for (const queryKey of keys) void queryClient.invalidateQueries({ queryKey });
  };
  return {
    add(keys: readonly (readonly unknown[])[]) {
      for (const key of keys) pending.set(JSON.stringify(key), key);
      timer ??= setTimeout(flush, Math.max(0, lastFlush + everyMs - now()));
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
      pending.clear();
    },
  };
}

/**
 * One event stream per tab (GET /api/events over fetch, see lib/sse.ts) for the signed-in user. Each
 * event invalidates the queries it makes stale (lib/query-keys.ts, throttled) and is prepended to
 * the activity feed's cache (`queryKeys.recentEvents`); components may also `useLiveEvents`.
 */
export function LiveProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const { state, signOut } = useAuth();
  const signedIn = state.status === 'signed-in';
  const [status, setStatus] = useState<{ status: StreamStatus; detail?: string }>({ status: 'stopped' });
  const listeners = useRef(new Set<Listener>());
  const subscribe = useCallback((listener: Listener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  useEffect(() => {
    if (!signedIn) return;
    // The feed has no observer of its own (useRecentEvents reads the cache): keep it while the tab lives.
    queryClient.setQueryDefaults(queryKeys.recentEvents, { gcTime: Number.POSITIVE_INFINITY });
    const invalidator = createInvalidator(queryClient);
    const stream = openEventStream({
      url: '/api/events',
      token: readToken,
      onStatus: (next, detail) => {
        setStatus({ status: next, detail });
        // Whatever happened while the stream was down is in the log, but the caches may have missed
        // a change the replay does not touch (a retention cut): refetch what is on screen.
        if (next === 'live') invalidator.add([queryKeys.tasks, queryKeys.overview, queryKeys.agents]);
      },
      onRefused: (code, detail) => {
        if (code === 401) signOut(`Signed out: ${detail}`);
      },
      onFrame: (frame) => {
        let event: PlatformEvent;
        try {
          event = PlatformEvent.parse(JSON.parse(frame.data));
        } catch {
          return; // A type this console does not know yet: a newer server. Nothing to update.
        }
        queryClient.setQueryData<PlatformEvent[]>(queryKeys.recentEvents, (old = []) =>
          [event, ...old.filter((e) => e.id !== event.id)].slice(0, RECENT_EVENTS),
        );
        invalidator.add(invalidationsFor(event));
        for (const listener of listeners.current) listener(event);
      },
    });
    return () => {
      stream.stop();
      invalidator.cancel();
      setStatus({ status: 'stopped' });
    };
  }, [signedIn, queryClient, signOut]);

  const value = useMemo<LiveValue>(() => ({ ...status, subscribe }), [status, subscribe]);
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

function useLive(): LiveValue {
  const value = useContext(LiveContext);
  if (!value) throw new Error('useLive needs a LiveProvider above it');
  return value;
}

/** The stream's state for the header's indicator. */
export function useLiveStatus(): { status: StreamStatus; detail?: string } {
  const { status, detail } = useLive();
  return { status, detail };
}

/**
 * Calls `onEvent` for every live event (not the replay of a page's own history); prefer query
 * invalidation, which is automatic, and use this for effects such as a toast.
 */
export function useLiveEvents(onEvent: Listener): void {
  const { subscribe } = useLive();
  const latest = useRef(onEvent);
  latest.current = onEvent;
  useEffect(() => subscribe((event) => latest.current(event)), [subscribe]);
}

/** The last RECENT_EVENTS events seen live, newest first (the activity feed). */
export function useRecentEvents(): PlatformEvent[] {
  const queryClient = useQueryClient();
  const cache = queryClient.getQueryCache();
  return useSyncExternalStore(
    (notify) => cache.subscribe(notify),
    () => queryClient.getQueryData<PlatformEvent[]>(queryKeys.recentEvents) ?? noEvents,
  );
}
const noEvents: PlatformEvent[] = [];

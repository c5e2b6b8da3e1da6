import { useEffect, useState } from 'react';
import { formatCost, formatDateTime, formatDuration, formatRelative } from '../lib/format';

/** Re-renders every `ms` so relative times and running durations move on their own. */
export function useNow(ms = 5000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** "5 min ago", with the exact date and time in a tooltip and for machines (<time dateTime>). */
export function RelativeTime({ iso }: { iso: string | null | undefined }) {
  const now = useNow();
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={formatDateTime(iso)}>
      {formatRelative(iso, now)}
    </time>
  );
}

/** An absolute date and time. */
export function DateTime({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">—</span>;
  return <time dateTime={iso}>{formatDateTime(iso)}</time>;
}

/** A duration in ms; with `from` and no `to`, the time since `from`, ticking. */
export function Duration({ ms, from, to }: { ms?: number | null; from?: string | null; to?: string | null }) {
  const now = useNow(1000);
  const value = ms ?? (from ? (to ? Date.parse(to) : now) - Date.parse(from) : null);
  return <span className="num">{formatDuration(value)}</span>;
}

/** An exact decimal cost. */
export function Cost({ value }: { value: string | number | null | undefined }) {
  return <span className="num">{formatCost(value)}</span>;
}

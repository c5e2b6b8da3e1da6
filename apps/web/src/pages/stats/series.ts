import type { StatsBucket, WorkflowStats, WorkflowStatsPoint } from '@devart/contracts';
import type { BarDatum, Series } from '../../components/charts';

/** The windows the page offers: each with the bucket that gives it a readable number of points. */
export const statsRanges = {
  '1h': { label: 'Last hour, by minute', ms: 3_600_000, bucket: 'minute' },
  '24h': { label: 'Last 24 hours, by hour', ms: 86_400_000, bucket: 'hour' },
  '30d': { label: 'Last 30 days, by day', ms: 30 * 86_400_000, bucket: 'day' },
  all: { label: 'All time, by day', ms: null, bucket: 'day' },
} as const satisfies Record<string, { label: string; ms: number | null; bucket: StatsBucket }>;
export type StatsRange = keyof typeof statsRanges;
export const defaultRange: StatsRange = '24h';

export function isStatsRange(value: string | null): value is StatsRange {
  return value !== null && Object.hasOwn(statsRanges, value);
}

/**
 * The `since` of a range, on a whole minute so the query (and its cache key) stays the same for a
 * minute instead of changing with every render; undefined for all time.
 * @example sinceOf('1h', Date.parse('2026-12-02T08:30:42Z')) // '2026-12-02T07:30:00.000Z'
 */
export function sinceOf(range: StatsRange, now: number): string | undefined {
  const { ms } = statsRanges[range];
  if (ms === null) return undefined;
  return new Date(Math.floor(now / 60_000) * 60_000 - ms).toISOString();
}

const numeric = (value: string | number | null) => (value === null ? null : Number(value));

function line(
  name: string,
  points: readonly WorkflowStatsPoint[],
  pick: (p: WorkflowStatsPoint) => string | number | null,
): Series {
  return {
    name,
    points: points.flatMap((p) => {
      const y = numeric(pick(p));
      return y === null || !Number.isFinite(y) ? [] : [{ x: Date.parse(p.start), y }];
    }),
  };
}

/**
 * The page's charts from GET /api/workflows/{id}/stats: p50/p95 duration and cost per bucket (a
 * bucket without a completed run has no point: there is no duration to show), runs per bucket, and
 * each step's failure rate in %. Costs become floats only to be drawn; the labels show the API's
 * exact decimals.
 */
export function statsSeries(stats: WorkflowStats, stepOrder: readonly string[] = []) {
  const points = stats.over_time.points;
  const rank = (key: string) => {
    const i = stepOrder.indexOf(key);
    return i === -1 ? stepOrder.length : i;
  };
  const steps = [...stats.steps].sort((a, b) => rank(a.key) - rank(b.key) || a.key.localeCompare(b.key));
  return {
    duration: [line('p50', points, (p) => p.duration_ms.p50), line('p95', points, (p) => p.duration_ms.p95)],
    cost: [line('p50', points, (p) => p.cost.p50), line('p95', points, (p) => p.cost.p95)],
    runs: points.map((p): BarDatum & { failed: number } => ({
      label: p.start,
      value: p.runs,
      failed: p.failed,
    })),
    failureRates: steps.map((s): BarDatum => ({ label: s.key, value: (s.failure_rate ?? 0) * 100 })),
    steps,
  };
}

/** Whether any series has a point to draw (a LineChart needs at least one). */
export function hasPoints(series: readonly Series[]): boolean {
  return series.some((s) => s.points.length > 0);
}

/** How many buckets the series cover: with one, a line has nowhere to go and words say more. */
export function bucketCount(series: readonly Series[]): number {
  return new Set(series.flatMap((s) => s.points.map((p) => p.x))).size;
}

const bucketFormats: Record<StatsBucket, Intl.DateTimeFormatOptions> = {
  minute: { hour: '2-digit', minute: '2-digit' },
  hour: { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' },
  day: { month: 'short', day: 'numeric' },
};

/** A bucket's start as its width reads best: 08:05, Dec 2, 08:00, or Dec 2 (in the browser's zone). */
export function formatBucket(bucket: StatsBucket, ms: number): string {
  return new Intl.DateTimeFormat(undefined, bucketFormats[bucket]).format(ms);
}

/**
 * Formatting shared by every page: times, durations, costs, ids. Pure functions of their input
 * (and `now` where relative), so they are easy to test and render the same on every row.
 */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** `2026-12-02T06:00:00Z` → "2 Dec 2026, 07:00:00" in the browser's locale and zone; "—" for null. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : dateTime.format(ms);
}

/** How long ago: "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; future times "in 5 min". */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const diff = now - ms;
  const abs = Math.abs(diff);
  if (abs < 5_000) return 'just now';
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 86_400_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

/** 812 → "812 ms", 61_500 → "1 min 2 s", 3_700_000 → "1 h 2 min"; "—" for null. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** The time between two ISO instants (`to` defaults to now, for what is still running). */
export function durationBetween(from: string | null | undefined, to?: string | null, now = Date.now()) {
  if (!from) return null;
  const end = to ? Date.parse(to) : now;
  return end - Date.parse(from);
}

/**
 * A cost as the API sends it (an exact decimal string) shown without losing digits: trailing zeros
 * cut, at least two decimals; "—" for null. Never goes through a float.
 * @example formatCost('0.012300000000') // '0.0123'
 */
export function formatCost(cost: string | number | null | undefined): string {
  if (cost === null || cost === undefined || cost === '') return '—';
  const text = String(cost);
  const [whole, fraction = ''] = text.split('.');
  const trimmed = fraction.replace(/0+$/, '').padEnd(2, '0');
  return `${whole}.${trimmed}`;
}

/** The first 8 characters of a UUID, enough to tell rows apart; the full id goes in a title. */
export function shortId(id: string | null | undefined): string {
  return id ? id.slice(0, 8) : '—';
}

/** 1234567 → "1,234,567" in the browser's locale. */
export function formatCount(n: number): string {
  return n.toLocaleString();
}

/** Pretty JSON for payloads and results; `undefined`/null shown as "null". */
export function formatJson(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

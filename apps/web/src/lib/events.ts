import type { PlatformEvent } from '@devart/contracts';

// The event types whose `data.error` says why something failed; the other task events carry the
// task's last error only as part of their snapshot, which would read as if they had failed too.
const failureTypes = new Set([
  'task.failed',
  'task.quarantined',
  'task.lease_expired',
  'workflow_run.failed',
  'sandbox.terminated',
]);

/**
 * The few `data` fields of an event worth a glance in a feed: "attempt 2 · 812 ms · exited with 3".
 * @example describeEvent({ type: 'task.done', data: { attempt: 1, duration_ms: 812 }, … }) // 'attempt 1 · 812 ms'
 */
export function describeEvent(event: PlatformEvent): string {
  const d = event.data as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof d.step_key === 'string') parts.push(`step ${d.step_key}`);
  if (typeof d.attempt === 'number') parts.push(`attempt ${d.attempt}`);
  if (typeof d.duration_ms === 'number') parts.push(`${d.duration_ms} ms`);
  if (d.cost !== undefined && d.cost !== null) parts.push(`cost ${String(d.cost)}`);
  if (d.total_cost !== undefined && d.total_cost !== null) parts.push(`total cost ${String(d.total_cost)}`);
  if (typeof d.reason === 'string') parts.push(d.reason);
  if (typeof d.error === 'string' && failureTypes.has(event.type)) parts.push(d.error.slice(0, 160));
  if (typeof d.next_attempt_at === 'string' && event.type === 'task.retry_scheduled') {
    parts.push(`retry at ${new Date(d.next_attempt_at).toLocaleTimeString()}`);
  }
  return parts.join(' · ');
}

/** What an event is about, for a link: the task page, the run page (W2), or nothing. */
export function eventSubjectLink(event: PlatformEvent): { to: string; text: string } | null {
  const title = typeof event.data.title === 'string' ? event.data.title : undefined;
  if (event.task_id) return { to: `/tasks/${event.task_id}`, text: title ?? event.task_id.slice(0, 8) };
  if (event.workflow_run_id) {
    return {
      to: `/workflows/runs/${event.workflow_run_id}`,
      text: `run ${event.workflow_run_id.slice(0, 8)}`,
    };
  }
  if (event.agent_id) return { to: '/agents', text: String(event.data.name ?? event.agent_id.slice(0, 8)) };
  if (event.item_id) return { to: `/marketplace/${event.item_id}`, text: String(event.data.name ?? 'item') };
  return null;
}

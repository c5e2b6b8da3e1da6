import type { NotificationEventType } from '@devart/contracts';
import {
  type ClaimedDelivery,
  type DailySummary,
  type Db,
  type Queryable,
  queueDeliveries,
  readAgentNotice,
  readDailySummary,
  readRunNotice,
  readTaskNotice,
} from '@devart/db';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';

/**
 * A notification before any channel renders it: plain text pieces, so each channel escapes them for
 * its own format (Telegram HTML, a Slack block…). Short enough for a phone's lock screen.
 */
export interface Notification {
  icon: string;
  /** What happened, in a few words: "Task quarantined". */
  headline: string;
  /** What it happened to: a task's title, a workflow's name. */
  subject?: string;
  /** Short lines of facts. */
  facts: string[];
  /** An error excerpt, shown as code. */
  excerpt?: string;
  link?: { label: string; url: string };
}

/** Who hears about what: NOTIFY_* and PUBLIC_URL. */
export interface NotificationPolicy {
  /** Event types that notify (NOTIFY_EVENTS). */
  events: readonly NotificationEventType[];
  /** Only these capabilities notify (NOTIFY_CAPABILITIES); undefined = all. */
  capabilities?: readonly string[];
  /** These capabilities never notify (NOTIFY_EXCLUDE_CAPABILITIES). */
  excludeCapabilities: readonly string[];
  /** The console's address for links (PUBLIC_URL); undefined = no links. */
  publicUrl?: string;
  /** A daily summary at this UTC time (NOTIFY_DAILY_SUMMARY_AT, HH:MM); undefined = none. */
  dailySummaryAt?: string;
}

/** What a delivery's notification is, or why it is not sent. */
export type Composed =
  | { outcome: 'notify'; notification: Notification }
  | { outcome: 'skip'; reason: string };

const EXCERPT_CHARS = 300;

/** The first characters of an error, at most a few lines, whole code points. */
export function excerpt(text: string | null | undefined, chars = EXCERPT_CHARS): string | undefined {
  if (!text) return undefined;
  const lines = text.trim().split('\n').slice(0, 6).join('\n');
  const points = Array.from(lines);
  return points.length > chars ? `${points.slice(0, chars - 1).join('')}…` : lines;
}

/** A duration for people: "850 ms", "12 s", "2 min 5 s", "1 h 3 min". */
export function formatDuration(ms: number | null | undefined): string | undefined {
  if (ms == null || !Number.isFinite(ms)) return undefined;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.floor(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Whether things with this capability (or, for an agent, these capabilities) notify under `policy`. */
export function capabilityNotifies(
  policy: NotificationPolicy,
  capabilities: readonly (string | null)[],
): boolean {
  const named = capabilities.filter((c): c is string => c !== null);
  const allowed = named.filter((c) => !policy.excludeCapabilities.includes(c));
  if (named.length > 0 && allowed.length === 0) return false;
  if (!policy.capabilities) return true;
  return allowed.some((c) => policy.capabilities!.includes(c));
}

interface EventPayload {
  type: string;
  id: string;
  at?: string;
  task_id?: string;
  workflow_run_id?: string;
  agent_id?: string;
  data?: Record<string, unknown>;
}

/**
 * Turns one delivery (an event, a daily summary, a test) into a notification, reading what the
 * event's snapshot lacks (a workflow's name, the failed step's error) and applying the policy:
 * a workflow's `notify`, the capabilities, an agent already back online.
 */
export async function composeNotification(
  db: Queryable,
  policy: NotificationPolicy,
  delivery: Pick<ClaimedDelivery, 'payload'>,
): Promise<Composed> {
  const payload = delivery.payload as Record<string, unknown>;
  const link = (label: string, path: string) =>
    policy.publicUrl ? { label, url: `${policy.publicUrl}${path}` } : undefined;
  if (payload.kind === 'test')
    return { outcome: 'notify', notification: testNotification(policy.publicUrl, payload) };
  if (payload.kind === 'daily_summary')
    return { outcome: 'notify', notification: summaryNotification(policy, payload as never) };
  const event = payload as unknown as EventPayload;
  if (!(policy.events as readonly string[]).includes(event.type))
    return { outcome: 'skip', reason: `${event.type} is not in NOTIFY_EVENTS` };
  const data = event.data ?? {};

  switch (event.type) {
    case 'task.quarantined': {
      const task = event.task_id ? await readTaskNotice(db, event.task_id) : undefined;
      if (!task) return { outcome: 'skip', reason: 'the task no longer exists' };
      if (!capabilityNotifies(policy, [task.capability]))
        return { outcome: 'skip', reason: `capability ${task.capability ?? '(none)'} does not notify` };
      if (task.workflow_run_id) {
        if (task.notify?.on_failure === false)
          return { outcome: 'skip', reason: 'its workflow opted out (notify.on_failure: false)' };
        // One message per incident: the run's failure names this step and its error.
        if (task.run_status === 'FAILED' && policy.events.includes('workflow_run.failed'))
          return { outcome: 'skip', reason: 'reported by its run’s failure' };
      }
      const attempts = typeof data.attempt === 'number' ? data.attempt : task.attempt;
      const facts = [
        [task.capability, plural(attempts, 'attempt')].filter(Boolean).join(' · '),
        ...(task.workflow_name ? [`Step ${task.step_key ?? '?'} of ${task.workflow_name}`] : []),
        ...(data.outcome === 'DEAD_LETTERED'
          ? ['Its message was dead-lettered (it kept killing agents).']
          : []),
      ];
      return {
        outcome: 'notify',
        notification: {
          icon: '🚨',
          headline: 'Task quarantined',
          subject: task.title,
          facts,
          excerpt: excerpt((data.error as string | undefined) ?? task.last_error),
          link: link('Open task', `/tasks/${task.id}`),
        },
      };
    }
    case 'workflow_run.failed':
    case 'workflow_run.completed': {
      const failedTaskId = typeof data.failed_task_id === 'string' ? data.failed_task_id : null;
      const run = event.workflow_run_id
        ? await readRunNotice(db, event.workflow_run_id, failedTaskId)
        : undefined;
      if (!run) return { outcome: 'skip', reason: 'the run no longer exists' };
      const totals = [
        formatDuration(run.duration_ms),
        run.total_cost !== null && run.total_cost !== undefined ? `cost ${run.total_cost}` : undefined,
      ].filter(Boolean);
      if (event.type === 'workflow_run.completed') {
        if (run.notify?.on_complete !== true)
          return { outcome: 'skip', reason: 'its workflow did not opt in (notify.on_complete)' };
        return {
          outcome: 'notify',
          notification: {
            icon: '✅',
            headline: 'Workflow run completed',
            subject: run.workflow_name,
            facts: [[plural(run.steps, 'step'), ...totals].join(' · ')],
            link: link('Open run', `/workflows/runs/${run.id}`),
          },
        };
      }
      if (run.notify?.on_failure === false)
        return { outcome: 'skip', reason: 'its workflow opted out (notify.on_failure: false)' };
      const step = run.failed_step;
      if (step && !capabilityNotifies(policy, [step.capability]))
        return { outcome: 'skip', reason: `capability ${step.capability ?? '(none)'} does not notify` };
      const cancelled = typeof data.cancelled_steps === 'number' ? data.cancelled_steps : 0;
      return {
        outcome: 'notify',
        notification: {
          icon: '❌',
          headline: 'Workflow run failed',
          subject: run.workflow_name,
          facts: [
            step
              ? `Step ${step.step_key ?? '?'} (${step.title}) quarantined after ${plural(step.attempt, 'attempt')}`
              : 'A step was quarantined',
            [cancelled ? `${plural(cancelled, 'step')} cancelled` : undefined, ...totals]
              .filter(Boolean)
              .join(' · '),
          ].filter(Boolean),
          excerpt: excerpt(step?.last_error),
          link: link('Open run', `/workflows/runs/${run.id}`),
        },
      };
    }
    case 'agent.offline': {
      const agent = event.agent_id ? await readAgentNotice(db, event.agent_id) : undefined;
      if (!agent) return { outcome: 'skip', reason: 'the agent no longer exists' };
      if (agent.status !== 'OFFLINE')
        return { outcome: 'skip', reason: `the agent is ${agent.status} again` };
      if (!capabilityNotifies(policy, agent.capabilities))
        return { outcome: 'skip', reason: 'none of its capabilities notify' };
      const lastSeen =
        typeof data.last_seen_at === 'string' ? data.last_seen_at : agent.last_heartbeat_at?.toISOString();
      return {
        outcome: 'notify',
        notification: {
          icon: '⚠️',
          headline: 'Agent offline',
          subject: agent.name,
          facts: [
            agent.capabilities.length ? agent.capabilities.join(', ') : 'any capability',
            ...(lastSeen ? [`Last seen ${formatUtc(lastSeen)}`] : []),
          ],
          link: link('Open agents', '/agents'),
        },
      };
    }
    default:
      return { outcome: 'skip', reason: `${event.type} has no notification` };
  }
}

/** "2026-12-02 06:00 UTC" */
function formatUtc(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The test message (`devart notify test`): says the chat is reached, and when. */
export function testNotification(
  publicUrl: string | undefined,
  payload: Record<string, unknown>,
): Notification {
  return {
    icon: '✅',
    headline: 'devart test message',
    facts: [
      typeof payload.text === 'string' ? payload.text : 'Notifications reach this chat.',
      `Sent ${formatUtc(typeof payload.at === 'string' ? payload.at : new Date().toISOString())}`,
    ],
    link: publicUrl ? { label: 'Open devart', url: publicUrl } : undefined,
  };
}

function summaryNotification(policy: NotificationPolicy, s: DailySummary): Notification {
  return {
    icon: '📊',
    headline: 'Daily summary',
    subject: `24 h to ${formatUtc(s.until)}`,
    facts: [
      `Tasks: ${s.tasks_created} created, ${s.tasks_done} done, ${plural(s.tasks_failed, 'failed attempt')}, ${s.tasks_quarantined} quarantined`,
      `Runs: ${s.runs_completed} completed, ${s.runs_failed} failed`,
      `Now: ${s.quarantined_now} in quarantine, ${plural(s.agents_offline_now, 'agent')} offline, ${s.todo_now} waiting`,
    ],
    link: policy.publicUrl
      ? s.quarantined_now > 0
        ? { label: 'Open quarantine', url: `${policy.publicUrl}/quarantine` }
        : { label: 'Open devart', url: policy.publicUrl }
      : undefined,
  };
}

/** The latest scheduled summary time at or before `now` for a daily `HH:MM` (UTC). */
export function latestSummaryTime(at: string, now: Date): Date {
  const [hours, minutes] = at.split(':').map(Number) as [number, number];
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hours, minutes));
  return today.getTime() <= now.getTime() ? today : new Date(today.getTime() - 86_400_000);
}

export interface DailySummaries {
  /** Queues the summary due at or before `now`, if not yet queued (tests; the timer calls it every minute). */
  queueDue(now?: Date): Promise<void>;
  stop(): void;
}

/**
 * Queues one daily summary per channel and day (dedupe key `daily-summary:<date>`, so once across
 * replicas), counting the 24 hours before the scheduled time. A process that starts after today's
 * time queues today's at once, if nobody has.
 */
export function startDailySummaries({
  db,
  logger,
  at,
  channels,
  checkEveryMs = 60_000,
  clock = () => new Date(),
}: {
  db: Db;
  logger: Logger;
  at: string;
  channels: readonly { name: string; target: string }[];
  checkEveryMs?: number;
  clock?: () => Date;
}): DailySummaries {
  const streak = failureStreak(logger, 'daily summary');
  let queuedFor = 0;
  const queueDue = async (now = clock()) => {
    const until = latestSummaryTime(at, now);
    if (until.getTime() <= queuedFor) return;
    const summary = await readDailySummary(db, { since: new Date(until.getTime() - 86_400_000), until });
    const day = until.toISOString().slice(0, 10);
    await queueDeliveries(
      db,
      channels.map((c) => ({
        channel: c.name,
        dedupeKey: `daily-summary:${day}`,
        target: c.target,
        payload: { kind: 'daily_summary', ...summary },
      })),
    );
    queuedFor = until.getTime();
  };
  const timer = setInterval(() => {
    queueDue().then(streak.succeeded, streak.failed);
  }, checkEveryMs);
  queueDue().then(streak.succeeded, streak.failed);
  return { queueDue, stop: () => clearInterval(timer) };
}

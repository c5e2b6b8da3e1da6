import type { PlatformEvent } from '@devart/contracts';

/**
 * The query keys of the console, one place: hooks build their keys here, and the live event stream
 * invalidates by the same prefixes (invalidationsFor), so a page is current without knowing about
 * events. A new resource adds its keys here and, if events touch it, a line to invalidationsFor.
 */
export const queryKeys = {
  session: ['session'] as const,
  overview: ['overview'] as const,
  tasks: ['tasks'] as const,
  taskList: (filter: Record<string, string | undefined>) => ['tasks', 'list', filter] as const,
  taskBoard: ['tasks', 'board'] as const,
  quarantine: ['tasks', 'quarantine'] as const,
  task: (id: string) => ['task', id] as const,
  taskAttempts: (id: string) => ['task', id, 'attempts'] as const,
  taskEvents: (id: string) => ['task', id, 'events'] as const,
  taskSandboxes: (id: string) => ['task', id, 'sandboxes'] as const,
  agents: ['agents'] as const,
  workflows: ['workflows'] as const,
  workflow: (id: string) => ['workflow', id] as const,
  workflowRuns: ['workflow-runs'] as const,
  workflowRun: (id: string) => ['workflow-run', id] as const,
  stats: ['stats'] as const,
  marketplace: ['marketplace'] as const,
  recentEvents: ['events', 'recent'] as const,
};

type Key = readonly unknown[];

/** The query prefixes an event makes stale. */
export function invalidationsFor(event: PlatformEvent): Key[] {
  const keys: Key[] = [];
  const [kind] = event.type.split('.');
  if (kind === 'task') {
    keys.push(queryKeys.tasks, queryKeys.overview);
    if (event.task_id) keys.push(queryKeys.task(event.task_id));
    if (event.agent_id) keys.push(queryKeys.agents);
  }
  if (kind === 'task' || kind === 'workflow_run') {
    if (event.workflow_run_id) {
      keys.push(queryKeys.workflowRuns, queryKeys.workflowRun(event.workflow_run_id));
    }
  }
  if (kind === 'workflow_run') keys.push(queryKeys.workflows, queryKeys.stats, queryKeys.overview);
  if (kind === 'agent') keys.push(queryKeys.agents, queryKeys.overview);
  if (kind === 'sandbox' && event.task_id) keys.push(queryKeys.task(event.task_id));
  if (kind === 'marketplace') keys.push(queryKeys.marketplace);
  return keys;
}

/** Task states (DESIGN §3) and the transitions a person may ask for. */
export const taskStatuses = ['PENDING', 'TODO', 'IN_PROGRESS', 'DONE', 'QUARANTINED', 'CANCELLED'] as const;
export type TaskStatus = (typeof taskStatuses)[number];

export const agentStatuses = ['IDLE', 'BUSY', 'OFFLINE'] as const;
export type AgentStatus = (typeof agentStatuses)[number];

/** States from which a task can still be cancelled; the others are final. */
export const cancellableStatuses: readonly TaskStatus[] = ['PENDING', 'TODO', 'IN_PROGRESS'];

export function isFinalStatus(status: TaskStatus): boolean {
  return status === 'DONE' || status === 'QUARANTINED' || status === 'CANCELLED';
}

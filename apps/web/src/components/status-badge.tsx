/**
 * A status as a badge: the word itself is always shown (no colour-only meaning), the colour helps.
 * Knows task, run, agent and sandbox states; anything else gets the neutral style.
 */
const tones: Record<string, 'ok' | 'bad' | 'busy' | 'wait' | 'off'> = {
  DONE: 'ok',
  COMPLETED: 'ok',
  IDLE: 'ok',
  RUNNING: 'busy',
  IN_PROGRESS: 'busy',
  BUSY: 'busy',
  PROVISIONING: 'wait',
  TODO: 'wait',
  PENDING: 'wait',
  QUARANTINED: 'bad',
  FAILED: 'bad',
  LEASE_EXPIRED: 'bad',
  DEAD_LETTERED: 'bad',
  CANCELLED: 'off',
  OFFLINE: 'off',
  REVOKED: 'off',
  TERMINATED: 'off',
};

export function StatusBadge({ status }: { status: string }) {
  const tone = tones[status] ?? 'off';
  return (
    <span className={`badge badge-${tone}`} data-status={status}>
      {status.replaceAll('_', ' ')}
    </span>
  );
}

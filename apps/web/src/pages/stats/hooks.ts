import type { StatsBucket, WorkflowStats } from '@devart/contracts';
import { useQuery } from '@tanstack/react-query';
import { api } from '../../lib/api';
import { queryKeys } from '../../lib/query-keys';

/** GET /api/workflows/{id}/stats for a window; run events make it stale (queryKeys.stats). */
export function useWorkflowStats(workflowId: string, since: string | undefined, bucket: StatsBucket) {
  return useQuery({
    queryKey: [...queryKeys.stats, workflowId, { since, bucket }],
    queryFn: ({ signal }) =>
      api<WorkflowStats>(`/api/workflows/${encodeURIComponent(workflowId)}/stats`, {
        query: { since, bucket },
        signal,
      }),
    // A wider window of the same workflow keeps the charts on screen while it loads; another workflow does not.
    placeholderData: (previous, previousQuery) =>
      previousQuery?.queryKey[1] === workflowId ? previous : undefined,
  });
}

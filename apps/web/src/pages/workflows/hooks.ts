import type {
  TriggeredRun,
  Workflow,
  WorkflowPage,
  WorkflowRunDetail,
  WorkflowRunPage,
} from '@devart/contracts';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { z } from 'zod';
import { api } from '../../lib/api';
import { queryKeys } from '../../lib/query-keys';

/** A page of GET /api/workflows, newest first. */
export function useWorkflows(cursor?: string, limit = 25) {
  return useQuery({
    queryKey: [...queryKeys.workflows, 'list', { cursor, limit }],
    queryFn: ({ signal }) => api<WorkflowPage>('/api/workflows', { query: { cursor, limit }, signal }),
    placeholderData: keepPreviousData,
  });
}

export function useWorkflow(id: string) {
  return useQuery({
    queryKey: queryKeys.workflow(id),
    queryFn: ({ signal }) => api<Workflow>(`/api/workflows/${encodeURIComponent(id)}`, { signal }),
  });
}

/**
 * The newest run of a workflow, for the list. Keyed under `workflows` (not `workflow-runs`): only
 * run events make it stale, so the list is not refetched for every step of every run.
 */
export function useLastRun(workflowId: string) {
  return useQuery({
    queryKey: [...queryKeys.workflows, 'last-run', workflowId],
    queryFn: async ({ signal }) => {
      const page = await api<WorkflowRunPage>(`/api/workflows/${encodeURIComponent(workflowId)}/runs`, {
        query: { limit: 1 },
        signal,
      });
      return page.items[0] ?? null;
    },
  });
}

/** A page of a workflow's runs, newest first. */
export function useWorkflowRuns(workflowId: string, cursor?: string, limit = 20) {
  return useQuery({
    queryKey: [...queryKeys.workflowRuns, workflowId, { cursor, limit }],
    queryFn: ({ signal }) =>
      api<WorkflowRunPage>(`/api/workflows/${encodeURIComponent(workflowId)}/runs`, {
        query: { cursor, limit },
        signal,
      }),
    placeholderData: keepPreviousData,
  });
}

/** A run with its steps; the event stream refetches it on each of its steps' events. */
export function useWorkflowRun(id: string) {
  return useQuery({
    queryKey: queryKeys.workflowRun(id),
    queryFn: ({ signal }) =>
      api<WorkflowRunDetail>(`/api/workflow-runs/${encodeURIComponent(id)}`, { signal }),
  });
}

export function useTriggerRun(workflowId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (variables: Record<string, unknown>) =>
      api<z.infer<typeof TriggeredRun>>(`/api/workflows/${encodeURIComponent(workflowId)}/trigger`, {
        method: 'POST',
        body: { variables },
      }),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: queryKeys.workflowRuns });
      void queryClient.invalidateQueries({ queryKey: queryKeys.workflows });
    },
  });
}

export function useCancelRun() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (runId: string) =>
      api<WorkflowRunDetail>(`/api/workflow-runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST' }),
    onSuccess: (run) => {
      queryClient.setQueryData(queryKeys.workflowRun(run.id), run);
      void queryClient.invalidateQueries({ queryKey: queryKeys.workflowRuns });
      void queryClient.invalidateQueries({ queryKey: queryKeys.workflows });
    },
  });
}

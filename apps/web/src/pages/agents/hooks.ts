import type { Agent, CreateAgentBody, CreatedAgent, Task } from '@devart/contracts';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo } from 'react';
import { api } from '../../lib/api';
import { queryKeys } from '../../lib/query-keys';

export function useAgents({ includeRevoked = false } = {}) {
  return useQuery({
    queryKey: [...queryKeys.agents, { includeRevoked }],
    queryFn: ({ signal }) =>
      api<{ items: Agent[] }>('/api/agents', {
        query: { include_revoked: includeRevoked ? 'true' : undefined },
        signal,
      }),
  });
}

/** The capabilities of live agents, sorted: suggestions for a task's capability. */
export function useAgentCapabilities(): string[] {
  const agents = useAgents();
  return useMemo(
    () => [...new Set((agents.data?.items ?? []).flatMap((a) => a.capabilities))].sort(),
    [agents.data],
  );
}

/**
 * The task each agent is running now, from the IN_PROGRESS tasks (at most 200: one page). Keyed
 * under `tasks`, so task events keep it current.
 */
export function useCurrentTasks() {
  const query = useQuery({
    queryKey: queryKeys.taskList({ status: 'IN_PROGRESS', limit: '200', by: 'agent' }),
    queryFn: ({ signal }) =>
      api<{ items: Task[] }>('/api/tasks', { query: { status: 'IN_PROGRESS', limit: 200 }, signal }),
  });
  return useMemo(() => {
    const byAgent = new Map<string, Task>();
    for (const task of query.data?.items ?? []) if (task.agent_id) byAgent.set(task.agent_id, task);
    return byAgent;
  }, [query.data]);
}

export function useRegisterAgent() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateAgentBody) => api<CreatedAgent>('/api/agents', { method: 'POST', body }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: queryKeys.agents }),
  });
}

export function useRevokeAgent() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api<void>(`/api/agents/${encodeURIComponent(id)}`, { method: 'DELETE' }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: queryKeys.agents }),
  });
}

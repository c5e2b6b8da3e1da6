import type { CreateTaskBody, PlatformEvent, Task, TaskStatus } from '@devart/contracts';
import { keepPreviousData, useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../../lib/api';
import { queryKeys } from '../../lib/query-keys';
import type { Sandbox, TaskAttempt } from '../../lib/types';

export interface TaskPage {
  items: Task[];
  next_cursor: string | null;
}

export interface TaskFilter {
  status?: TaskStatus;
  capability?: string;
  cursor?: string;
  limit?: number;
}

/** A page of GET /api/tasks (newest first); the previous page stays on screen while the next loads. */
export function useTaskList(filter: TaskFilter) {
  const key = { ...filter, limit: String(filter.limit ?? 25) };
  return useQuery({
    queryKey: queryKeys.taskList(key),
    queryFn: ({ signal }) => api<TaskPage>('/api/tasks', { query: key, signal }),
    placeholderData: keepPreviousData,
  });
}

/** The newest `limit` tasks of each status, for the board. */
export function useTaskBoard(statuses: readonly TaskStatus[], limit = 8) {
  return useQueries({
    queries: statuses.map((status) => ({
      queryKey: queryKeys.taskList({ status, limit: String(limit), board: 'yes' }),
      queryFn: ({ signal }: { signal: AbortSignal }) =>
        api<TaskPage>('/api/tasks', { query: { status, limit }, signal }),
    })),
  });
}

export function useTask(id: string) {
  return useQuery({
    queryKey: queryKeys.task(id),
    queryFn: ({ signal }) => api<Task>(`/api/tasks/${encodeURIComponent(id)}`, { signal }),
  });
}

export function useTaskAttempts(id: string) {
  return useQuery({
    queryKey: queryKeys.taskAttempts(id),
    queryFn: ({ signal }) =>
      api<{ items: TaskAttempt[] }>(`/api/tasks/${encodeURIComponent(id)}/attempts`, { signal }),
  });
}

/** The task's events, oldest first (the first 500: far more than any task has). */
export function useTaskEvents(id: string) {
  return useQuery({
    queryKey: queryKeys.taskEvents(id),
    queryFn: ({ signal }) =>
      api<{ items: PlatformEvent[]; next_after: string | null }>('/api/events/history', {
        query: { task_id: id, limit: 500 },
        signal,
      }),
  });
}

/** Each sandbox the task's events name, read from GET /api/sandboxes/{id}. */
export function useSandboxes(ids: readonly string[]) {
  return useQueries({
    queries: ids.map((id) => ({
      queryKey: ['sandbox', id],
      queryFn: ({ signal }: { signal: AbortSignal }) =>
        api<Sandbox>(`/api/sandboxes/${encodeURIComponent(id)}`, { signal }),
    })),
  });
}

function useInvalidateTasks() {
  const queryClient = useQueryClient();
  return (task: Task) => {
    queryClient.setQueryData(queryKeys.task(task.id), task);
    void queryClient.invalidateQueries({ queryKey: queryKeys.tasks });
    void queryClient.invalidateQueries({ queryKey: queryKeys.overview });
  };
}

export function useCreateTask() {
  const done = useInvalidateTasks();
  return useMutation({
    mutationFn: (body: CreateTaskBody) => api<Task>('/api/tasks', { method: 'POST', body }),
    onSuccess: done,
  });
}

export function useCancelTask() {
  const done = useInvalidateTasks();
  return useMutation({
    mutationFn: (id: string) => api<Task>(`/api/tasks/${encodeURIComponent(id)}/cancel`, { method: 'POST' }),
    onSuccess: done,
  });
}

export function useRequeueTask() {
  const done = useInvalidateTasks();
  return useMutation({
    mutationFn: ({ id, payload }: { id: string; payload?: Record<string, unknown> }) =>
      api<Task>(`/api/tasks/${encodeURIComponent(id)}/requeue`, {
        method: 'POST',
        body: payload === undefined ? {} : { payload },
      }),
    onSuccess: done,
  });
}

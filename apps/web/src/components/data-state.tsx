import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { ApiError } from '../lib/api';

/** An error in words: a problem+json's title and detail, or the error's message. */
export function ErrorMessage({ error, title = 'Something went wrong' }: { error: unknown; title?: string }) {
  const heading = error instanceof ApiError ? error.problem.title : title;
  const detail =
    error instanceof ApiError
      ? error.problem.detail
      : error instanceof Error
        ? error.message
        : String(error ?? '');
  const fields = error instanceof ApiError ? (error.problem.errors ?? []) : [];
  return (
    <div className="notice notice-error" role="alert">
      <strong>{heading}</strong>
      {error instanceof ApiError && <span className="muted"> ({error.status})</span>}
      {detail && <p>{detail}</p>}
      {fields.length > 0 && (
        <ul>
          {fields.map((f) => (
            <li key={`${f.location}.${f.field}`}>
              <code>{f.field}</code>: {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export interface DataStateProps<T> {
  query: Pick<UseQueryResult<T>, 'data' | 'error' | 'isPending' | 'isError' | 'refetch'>;
  /** What "nothing" means for this data; an empty state is shown instead of children. */
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  /** Names what is loading, for screen readers ("Loading tasks…"). */
  label?: string;
  children: (data: T) => ReactNode;
}

/**
 * The loading, error and empty states of one query, so every page shows them the same way; the
 * error shows a problem+json's title and detail, with a retry button.
 * @example
 * <DataState query={useAgents()} label="agents" isEmpty={(d) => d.items.length === 0} empty="No agents yet.">
 *   {(data) => <AgentTable agents={data.items} />}
 * </DataState>
 */
export function DataState<T>({ query, isEmpty, empty, label = 'data', children }: DataStateProps<T>) {
  if (query.isPending) {
    return (
      <div className="loading" role="status" aria-live="polite">
        <span className="spinner" aria-hidden="true" /> Loading {label}…
      </div>
    );
  }
  if (query.isError) {
    return (
      <div>
        <ErrorMessage error={query.error} title={`Could not load ${label}`} />
        <button type="button" className="button" onClick={() => void query.refetch()}>
          Try again
        </button>
      </div>
    );
  }
  const data = query.data as T;
  if (isEmpty?.(data)) {
    return <div className="empty">{empty ?? `No ${label}.`}</div>;
  }
  return <>{children(data)}</>;
}

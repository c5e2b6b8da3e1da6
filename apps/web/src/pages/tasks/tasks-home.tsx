import { type TaskStatus, taskStatusValues } from '@devart/contracts';
import { type FormEvent, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { DataState } from '../../components/data-state';
import { Drawer } from '../../components/dialog';
import { PageHeader } from '../../components/layout';
import { Pagination, useCursorPages } from '../../components/pagination';
import { StatusBadge } from '../../components/status-badge';
import { useCan } from '../../lib/auth';
import { useAgentCapabilities } from '../agents/hooks';
import { CreateTaskForm } from './create-task-form';
import { useTaskBoard, useTaskList } from './hooks';
import { TaskTable } from './task-table';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const capabilityPattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Six columns, one per status, each with its newest tasks. */
function TaskBoard() {
  const columns = useTaskBoard(taskStatusValues);
  return (
    <section aria-labelledby="board-title">
      <h2 id="board-title">Board</h2>
      <div className="board">
        {taskStatusValues.map((status, i) => {
          const query = columns[i]!;
          return (
            <section
              key={status}
              className="board-column"
              aria-label={`${status} tasks`}
              data-column={status}
            >
              <h2>
                <StatusBadge status={status} />
                <Link to={`/tasks?status=${status}`} className="muted" aria-label={`All ${status} tasks`}>
                  all
                </Link>
              </h2>
              <DataState
                query={query}
                label={`${status} tasks`}
                isEmpty={(page) => page.items.length === 0}
                empty={<span>None</span>}
              >
                {(page) => (
                  <ul>
                    {page.items.map((task) => (
                      <li key={task.id}>
                        <Link className="card" to={`/tasks/${task.id}`} data-task-id={task.id}>
                          {task.title}
                          <span className="muted"> · {task.capability ?? 'any'}</span>
                        </Link>
                      </li>
                    ))}
                  </ul>
                )}
              </DataState>
            </section>
          );
        })}
      </div>
    </section>
  );
}

/** Filters (kept in the URL, so a link can open them), the table and its pages. */
function TaskListSection() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const status = (params.get('status') ?? '') as TaskStatus | '';
  const capability = params.get('capability') ?? '';
  const [capabilityText, setCapabilityText] = useState(capability);
  const [findId, setFindId] = useState('');
  const [findError, setFindError] = useState<string>();
  const pages = useCursorPages();
  const query = useTaskList({
    status: status || undefined,
    capability: capability || undefined,
    cursor: pages.cursor,
  });
  const setFilter = (key: 'status' | 'capability', value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
    pages.reset();
  };
  const applyCapability = (e: FormEvent) => {
    e.preventDefault();
    setFilter('capability', capabilityText.trim());
  };
  const find = (e: FormEvent) => {
    e.preventDefault();
    const id = findId.trim();
    if (!uuid.test(id)) {
      setFindError('Paste a whole task id (a UUID).');
      return;
    }
    setFindError(undefined);
    navigate(`/tasks/${id.toLowerCase()}`);
  };
  const capabilityInvalid = capabilityText.trim() !== '' && !capabilityPattern.test(capabilityText.trim());

  return (
    <section aria-labelledby="list-title">
      <h2 id="list-title">All tasks</h2>
      <div className="filters">
        <div className="field">
          <label htmlFor="filter-status">Status</label>
          <select id="filter-status" value={status} onChange={(e) => setFilter('status', e.target.value)}>
            <option value="">Any</option>
            {taskStatusValues.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <form className="field" onSubmit={applyCapability}>
          <label htmlFor="filter-capability">Capability</label>
          <span className="actions" style={{ marginTop: 0 }}>
            <input
              id="filter-capability"
              value={capabilityText}
              placeholder="e.g. shell"
              onChange={(e) => setCapabilityText(e.target.value)}
              onBlur={() => !capabilityInvalid && setFilter('capability', capabilityText.trim())}
              aria-invalid={capabilityInvalid || undefined}
              size={12}
            />
          </span>
          {capabilityInvalid && <span className="field-error">A capability is a lowercase slug.</span>}
        </form>
        <form className="field" onSubmit={find}>
          <label htmlFor="find-id">Find by id</label>
          <span className="actions" style={{ marginTop: 0 }}>
            <input
              id="find-id"
              value={findId}
              onChange={(e) => setFindId(e.target.value)}
              placeholder="task UUID"
              size={38}
              aria-invalid={findError ? true : undefined}
              aria-describedby={findError ? 'find-id-error' : undefined}
            />
            <button type="submit" className="button">
              Open
            </button>
          </span>
          {findError && (
            <span className="field-error" id="find-id-error" role="alert">
              {findError}
            </span>
          )}
        </form>
      </div>
      <DataState
        query={query}
        label="tasks"
        isEmpty={(page) => page.items.length === 0}
        empty={status || capability ? 'No task matches these filters.' : 'No tasks yet.'}
      >
        {(page) => <TaskTable tasks={page.items} caption="Tasks, newest first" />}
      </DataState>
      <Pagination pages={pages} nextCursor={query.data?.next_cursor} />
    </section>
  );
}

export function TasksHome() {
  const canCreate = useCan('tasks.create');
  const [creating, setCreating] = useState(false);
  const capabilities = useAgentCapabilities();
  const navigate = useNavigate();
  return (
    <>
      <PageHeader title="Tasks">
        {canCreate && (
          <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
            New task
          </button>
        )}
      </PageHeader>
      <TaskBoard />
      <TaskListSection />
      {canCreate && (
        <Drawer open={creating} title="New task" onClose={() => setCreating(false)}>
          <CreateTaskForm
            capabilities={capabilities}
            onCreated={(task) => {
              setCreating(false);
              navigate(`/tasks/${task.id}`);
            }}
          />
        </Drawer>
      )}
    </>
  );
}

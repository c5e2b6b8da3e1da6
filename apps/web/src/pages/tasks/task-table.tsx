import type { Task } from '@devart/contracts';
import { Link } from 'react-router';
import { StatusBadge } from '../../components/status-badge';
import { Cost, RelativeTime } from '../../components/time';
import { shortId } from '../../lib/format';

/** Tasks as table rows: the title links to the task's page. */
export function TaskTable({ tasks, caption }: { tasks: readonly Task[]; caption: string }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Status</th>
            <th scope="col">Capability</th>
            <th scope="col" className="hide-narrow">
              Attempt
            </th>
            <th scope="col" className="hide-narrow">
              Cost
            </th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map((task) => (
            <tr key={task.id} data-task-id={task.id}>
              <td className="wrap">
                <Link to={`/tasks/${task.id}`}>{task.title}</Link>
                <div className="muted" title={task.id}>
                  <code>{shortId(task.id)}</code>
                  {task.step_key && <> · step {task.step_key}</>}
                </div>
              </td>
              <td>
                <StatusBadge status={task.status} />
              </td>
              <td>{task.capability ?? <span className="muted">any</span>}</td>
              <td className="hide-narrow num">
                {task.attempt} / {task.max_retries + 1}
              </td>
              <td className="hide-narrow">
                <Cost value={task.cost} />
              </td>
              <td>
                <RelativeTime iso={task.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

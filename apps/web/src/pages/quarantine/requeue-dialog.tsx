import type { Task } from '@devart/contracts';
import { useState } from 'react';
import { ErrorMessage } from '../../components/data-state';
import { Dialog } from '../../components/dialog';
import { JsonEditor, parseJsonObject } from '../../components/json-editor';
import { formatJson } from '../../lib/format';
import { useRequeueTask } from '../tasks/hooks';

/**
 * Requeue a quarantined task, with its payload as it is or edited: the payload is sent only when
 * it was changed, so an untouched requeue keeps the stored one exactly.
 */
export function RequeueDialog({ task, onClose }: { task: Task; onClose: () => void }) {
  const requeue = useRequeueTask();
  const original = formatJson(task.payload);
  const [text, setText] = useState(original);
  const [error, setError] = useState<string>();
  const submit = () => {
    const changed = text !== original;
    const parsed = parseJsonObject(text);
    if (changed && !parsed.ok) {
      setError(parsed.error);
      return;
    }
    const payload = changed && parsed.ok ? (parsed.value ?? {}) : undefined;
    requeue.mutate({ id: task.id, payload }, { onSuccess: onClose });
  };
  return (
    <Dialog open title={`Requeue “${task.title}”`} onClose={onClose}>
      <p>
        It goes back to TODO with its retry counter reset; its attempts so far are kept. Edit the payload to
        change what the next attempt gets.
      </p>
      <JsonEditor
        label="Payload"
        value={text}
        onChange={(value) => {
          setText(value);
          setError(undefined);
        }}
        error={error}
        rows={10}
      />
      {requeue.isError && <ErrorMessage error={requeue.error} title="Not requeued" />}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="button button-primary" onClick={submit} disabled={requeue.isPending}>
          {requeue.isPending ? 'Requeueing…' : text === original ? 'Requeue' : 'Requeue with this payload'}
        </button>
      </div>
    </Dialog>
  );
}

import type { Task } from '@devart/contracts';
import { CreateTaskBody } from '@devart/contracts';
import { type FormEvent, type ReactNode, useId, useState } from 'react';
import { ErrorMessage } from '../../components/data-state';
import { JsonEditor, parseJsonObject } from '../../components/json-editor';
import { useCreateTask } from './hooks';

type FieldErrors = Partial<
  Record<'title' | 'capability' | 'priority' | 'max_retries' | 'payload' | 'description', string>
>;

/**
 * Turns the form's text fields into a CreateTaskBody, or the errors to show beside each field:
 * the same zod schema the API validates with, so the form refuses exactly what the API would.
 */
export function readCreateTaskForm(fields: {
  title: string;
  description: string;
  capability: string;
  priority: string;
  max_retries: string;
  payload: string;
}): { ok: true; body: CreateTaskBody } | { ok: false; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const payload = parseJsonObject(fields.payload);
  if (!payload.ok) errors.payload = payload.error;
  const int = (text: string, field: 'priority' | 'max_retries') => {
    if (text.trim() === '') return undefined;
    if (!/^-?\d+$/.test(text.trim())) {
      errors[field] = 'must be a whole number';
      return undefined;
    }
    return Number(text);
  };
  const candidate = {
    title: fields.title,
    ...(fields.description.trim() ? { description: fields.description } : {}),
    ...(fields.capability.trim() ? { capability: fields.capability.trim() } : {}),
    ...(payload.ok && payload.value ? { payload: payload.value } : {}),
    priority: int(fields.priority, 'priority'),
    max_retries: int(fields.max_retries, 'max_retries'),
  };
  const parsed = CreateTaskBody.safeParse(candidate);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0] ?? 'title') as keyof FieldErrors;
      errors[field] ??= issue.message;
    }
  }
  if (Object.keys(errors).length > 0 || !parsed.success) return { ok: false, errors };
  return { ok: true, body: parsed.data };
}

/** The create-task form (supervisors and admins); calls `onCreated` with the new task. */
export function CreateTaskForm({
  capabilities,
  onCreated,
}: {
  capabilities: readonly string[];
  onCreated: (task: Task) => void;
}) {
  const create = useCreateTask();
  const id = useId();
  const [fields, setFields] = useState({
    title: '',
    description: '',
    capability: capabilities[0] ?? '',
    priority: '0',
    max_retries: '3',
    payload: '{\n  \n}',
  });
  const [errors, setErrors] = useState<FieldErrors>({});
  const set = (field: keyof typeof fields) => (value: string) => {
    setFields((f) => ({ ...f, [field]: value }));
    setErrors((e) => ({ ...e, [field]: undefined }));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const read = readCreateTaskForm(fields);
    if (!read.ok) {
      setErrors(read.errors);
      return;
    }
    create.mutate(read.body, { onSuccess: onCreated });
  };
  const field = (name: keyof FieldErrors, label: string, input: ReactNode, hint?: string) => (
    <div className="field">
      <label htmlFor={`${id}-${name}`}>{label}</label>
      {input}
      {hint && <span className="muted">{hint}</span>}
      {errors[name] && (
        <span className="field-error" id={`${id}-${name}-error`} role="alert">
          {errors[name]}
        </span>
      )}
    </div>
  );
  const inputProps = (name: keyof FieldErrors & keyof typeof fields) => ({
    id: `${id}-${name}`,
    name,
    value: fields[name],
    onChange: (e: { target: { value: string } }) => set(name)(e.target.value),
    'aria-invalid': errors[name] ? true : undefined,
    'aria-describedby': errors[name] ? `${id}-${name}-error` : undefined,
  });
  return (
    <form onSubmit={submit} noValidate aria-label="Create a task">
      {field('title', 'Title', <input {...inputProps('title')} required maxLength={500} />)}
      {field(
        'capability',
        'Capability',
        <>
          <input {...inputProps('capability')} list={`${id}-capabilities`} placeholder="echo" />
          <datalist id={`${id}-capabilities`}>
            {capabilities.map((c) => (
              <option key={c} value={c} />
            ))}
          </datalist>
        </>,
        'Which agents may take it: a lowercase slug such as echo or shell.',
      )}
      {field('description', 'Description', <textarea {...inputProps('description')} rows={2} />)}
      <div className="filters">
        {field(
          'priority',
          'Priority',
          <input {...inputProps('priority')} inputMode="numeric" size={6} />,
          '−1000 to 1000',
        )}
        {field(
          'max_retries',
          'Max retries',
          <input {...inputProps('max_retries')} inputMode="numeric" size={6} />,
          '0 to 100',
        )}
      </div>
      <JsonEditor
        label="Payload (JSON object)"
        value={fields.payload}
        onChange={set('payload')}
        error={errors.payload}
        hint="Input for the agent. The echo agent returns it as its result."
      />
      {create.isError && <ErrorMessage error={create.error} title="The task was not created" />}
      <div className="actions">
        <button type="submit" className="button button-primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create task'}
        </button>
      </div>
    </form>
  );
}

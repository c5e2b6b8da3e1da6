import type { WorkflowVariable, WorkflowVariableType } from '@devart/contracts';
import { resolveVariables } from '@devart/core';
import { type FormEvent, useId, useState } from 'react';
import { ErrorMessage } from '../../components/data-state';
import { ApiError } from '../../lib/api';
import { useTriggerRun } from './hooks';

/** One input of the trigger form, generated from a declared variable. */
export interface VariableField {
  name: string;
  type: WorkflowVariableType;
  /** The trigger is refused without a value: required and no default. */
  mustGive: boolean;
  /** The default as the form shows it, if the variable has one. */
  defaultText?: string;
  description?: string;
  control: 'text' | 'number' | 'boolean' | 'json';
}

const controls: Record<WorkflowVariableType, VariableField['control']> = {
  string: 'text',
  number: 'number',
  boolean: 'boolean',
  object: 'json',
  array: 'json',
};

function asText(type: WorkflowVariableType, value: unknown): string {
  if (type === 'string') return typeof value === 'string' ? value : JSON.stringify(value);
  if (type === 'object' || type === 'array') return JSON.stringify(value, null, 2);
  return String(value);
}

/**
 * The trigger form's fields, in the order the definition declares its variables: a text box for a
 * string, a number box, a true/false choice, a JSON editor for an object or an array.
 * @example variableFields({ branch: { type: 'string', default: 'main' } })
 * // [{ name: 'branch', type: 'string', mustGive: false, defaultText: 'main', control: 'text' }]
 */
export function variableFields(
  variables: Readonly<Record<string, WorkflowVariable>> | undefined,
): VariableField[] {
  return Object.entries(variables ?? {}).map(([name, v]) => ({
    name,
    type: v.type,
    mustGive: v.required === true && v.default === undefined,
    ...(v.default !== undefined ? { defaultText: asText(v.type, v.default) } : {}),
    ...(v.description ? { description: v.description } : {}),
    control: controls[v.type],
  }));
}

/** What the form starts with: each default, so the user sees what a run would get. */
export function initialValues(fields: readonly VariableField[]): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [f.name, f.defaultText ?? '']));
}

export type TriggerRead =
  | { ok: true; variables: Record<string, unknown> }
  | { ok: false; errors: Record<string, string> };

function parseValue(field: VariableField, text: string): { value: unknown } | { error: string } {
  switch (field.control) {
    case 'text':
      return { value: text };
    case 'number': {
      const n = Number(text.trim());
      return Number.isFinite(n) ? { value: n } : { error: 'must be a number' };
    }
    case 'boolean':
      return text === 'true'
        ? { value: true }
        : text === 'false'
          ? { value: false }
          : { error: 'choose true or false' };
    case 'json':
      try {
        return { value: JSON.parse(text) };
      } catch (error) {
        return { error: `not valid JSON (${(error as Error).message})` };
      }
  }
}

/**
 * Turns the form's text into the trigger's `variables`: a blank field is left out (its default
 * applies, or the API would refuse it if it must be given), the rest parsed by type; then the same
 * rule the API applies (resolveVariables) names what is missing or of the wrong type, by field.
 */
export function readTriggerForm(
  fields: readonly VariableField[],
  values: Readonly<Record<string, string>>,
  declared: Readonly<Record<string, WorkflowVariable>> | undefined,
): TriggerRead {
  const errors: Record<string, string> = {};
  const variables: Record<string, unknown> = {};
  for (const field of fields) {
    const text = values[field.name] ?? '';
    // A blank string is "not given" rather than "": a default is what a user leaving it blank means.
    if (text.trim() === '') continue;
    const parsed = parseValue(field, text);
    if ('error' in parsed) errors[field.name] = parsed.error;
    else variables[field.name] = parsed.value;
  }
  const resolved = resolveVariables(declared ?? {}, variables);
  if (!resolved.ok) {
    for (const problem of resolved.problems) {
      const name = fieldOfPath(problem.path);
      if (name) errors[name] ??= problem.message;
    }
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return { ok: true, variables };
}

/** `variables.branch` → `branch`; `variables["odd name"]` → `odd name`. */
export function fieldOfPath(path: string): string | undefined {
  const dotted = /^variables\.(.+)$/.exec(path);
  if (dotted) return dotted[1];
  const bracketed = /^variables\[(.+)\]$/.exec(path);
  if (bracketed) {
    try {
      return JSON.parse(bracketed[1]!) as string;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function hintOf(field: VariableField): string {
  const parts: string[] = [field.type];
  if (field.mustGive) parts.push('required');
  else if (field.defaultText !== undefined) parts.push('blank for the default');
  else parts.push('optional');
  return parts.join(' · ');
}

/**
 * The trigger form, generated from the workflow's declared variables; shows the API's problem
 * (and its field errors beside the fields) when the trigger is refused. `onTriggered` gets the run id.
 */
export function TriggerForm({
  workflowId,
  variables,
  onTriggered,
}: {
  workflowId: string;
  variables: Readonly<Record<string, WorkflowVariable>> | undefined;
  onTriggered: (runId: string) => void;
}) {
  const id = useId();
  const fields = variableFields(variables);
  const [values, setValues] = useState(() => initialValues(fields));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const trigger = useTriggerRun(workflowId);
  const serverErrors: Record<string, string> = {};
  if (trigger.error instanceof ApiError) {
    for (const e of trigger.error.problem.errors ?? []) {
      const name = fieldOfPath(e.field);
      if (name) serverErrors[name] ??= e.message;
    }
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const read = readTriggerForm(fields, values, variables);
    if (!read.ok) {
      setErrors(read.errors);
      return;
    }
    setErrors({});
    trigger.mutate(read.variables, { onSuccess: (run) => onTriggered(run.run_id) });
  };
  const set = (name: string, value: string) => {
    setValues((v) => ({ ...v, [name]: value }));
    setErrors((e) => ({ ...e, [name]: '' }));
  };

  return (
    <form onSubmit={submit} noValidate aria-label="Trigger a run" className="trigger-form">
      {fields.length === 0 && <p className="muted">This workflow declares no variables.</p>}
      {fields.map((field) => {
        const inputId = `${id}-${field.name}`;
        const error = errors[field.name] || serverErrors[field.name];
        const describedBy = `${inputId}-hint${error ? ` ${inputId}-error` : ''}`;
        const common = {
          id: inputId,
          name: field.name,
          value: values[field.name] ?? '',
          'aria-invalid': error ? true : undefined,
          'aria-describedby': describedBy,
          'aria-required': field.mustGive || undefined,
        };
        return (
          <div className="field" key={field.name} data-variable={field.name}>
            <label htmlFor={inputId}>
              {field.name}
              {field.mustGive && <span aria-hidden="true"> *</span>}
            </label>
            {field.control === 'boolean' ? (
              <select {...common} onChange={(e) => set(field.name, e.target.value)}>
                <option value="">
                  {field.defaultText !== undefined ? `default (${field.defaultText})` : '—'}
                </option>
                <option value="true">true</option>
                <option value="false">false</option>
              </select>
            ) : field.control === 'json' ? (
              <textarea
                {...common}
                rows={4}
                spellCheck={false}
                placeholder={field.type === 'array' ? '[ … ]' : '{ … }'}
                onChange={(e) => set(field.name, e.target.value)}
              />
            ) : (
              <input
                {...common}
                inputMode={field.control === 'number' ? 'decimal' : undefined}
                onChange={(e) => set(field.name, e.target.value)}
              />
            )}
            <span id={`${inputId}-hint`} className="muted">
              {field.description ? `${field.description} — ` : ''}
              {hintOf(field)}
            </span>
            {error && (
              <span id={`${inputId}-error`} className="field-error" role="alert">
                {error}
              </span>
            )}
          </div>
        );
      })}
      {trigger.isError && <ErrorMessage error={trigger.error} title="The run was not started" />}
      <div className="actions">
        {/* The name stays "Trigger run" while it works, so tests and screen readers can hold on to it. */}
        <button
          type="submit"
          className="button button-primary"
          disabled={trigger.isPending}
          aria-busy={trigger.isPending || undefined}
        >
          {trigger.isPending && <span className="spinner" aria-hidden="true" />} Trigger run
        </button>
      </div>
    </form>
  );
}

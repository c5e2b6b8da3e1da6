import { useId } from 'react';

export type JsonObjectParse =
  | { ok: true; value: Record<string, unknown> | undefined }
  | { ok: false; error: string };

/**
 * Reads the text of a payload editor: blank is "no payload" (undefined), otherwise it must be JSON
 * and a JSON object, as the API's JsonObject requires. The error names the line and column when
 * the browser's parser tells the position.
 * @example parseJsonObject('{"a": 1}') // { ok: true, value: { a: 1 } }
 * @example parseJsonObject('[1]') // { ok: false, error: 'must be a JSON object ({…}), not an array' }
 */
export function parseJsonObject(text: string): JsonObjectParse {
  if (text.trim() === '') return { ok: true, value: undefined };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not valid JSON: ${describeJsonError(text, error as Error)}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    return { ok: false, error: `must be a JSON object ({…}), not ${kind}` };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

function describeJsonError(text: string, error: Error): string {
  const position = /position (\d+)/.exec(error.message)?.[1];
  if (position === undefined) return error.message;
  const before = text.slice(0, Number(position));
  const line = before.split('\n').length;
  const column = Number(position) - before.lastIndexOf('\n');
  return `${error.message.replace(/ in JSON at position \d+.*$/, '')} at line ${line}, column ${column}`;
}

export interface JsonEditorProps {
  label: string;
  value: string;
  onChange: (text: string) => void;
  /** The message to show under the editor (parseJsonObject's error, or the API's). */
  error?: string;
  hint?: string;
  rows?: number;
}

/** A labelled monospace textarea for a JSON object, with its error announced and linked (aria-describedby). */
export function JsonEditor({ label, value, onChange, error, hint, rows = 8 }: JsonEditorProps) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        rows={rows}
        value={value}
        spellCheck={false}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-hint ${id}-error`}
      />
      {hint && (
        <span id={`${id}-hint`} className="muted">
          {hint}
        </span>
      )}
      <span id={`${id}-error`} className="field-error" role={error ? 'alert' : undefined}>
        {error}
      </span>
    </div>
  );
}

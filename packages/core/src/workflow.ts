/**
 * Workflow DAG rules (DESIGN §2, issue 5): validation of a definition, payload templates,
 * trigger variables and dependency release. Pure and I/O-free; the inputs are structural so
 * the contracts' parsed `WorkflowDefinitionBody` fits them without core importing contracts.
 *
 * Templates live in the strings of a step's payload (object keys are never templated):
 * - `{{vars.<name>}}` — a declared variable (a path may follow: `{{vars.config.branch}}`);
 * - `{{steps.<key>.result}}`, `{{steps.<key>.result.<path>}}` — an upstream step's result,
 *   where a path is dot-separated property names or array indices (`result.files.0.name`).
 * Whitespace inside the braces is allowed (`{{ vars.branch }}`). Templates are looked up, never
 * evaluated.
 */

export const workflowVariableTypes = ['string', 'number', 'boolean', 'object', 'array'] as const;
export type WorkflowVariableType = (typeof workflowVariableTypes)[number];

export interface WorkflowVariableDeclaration {
  type: WorkflowVariableType;
  required?: boolean;
  default?: unknown;
}

export interface WorkflowStepInput {
  key: string;
  depends_on?: readonly string[];
  payload?: unknown;
}

export interface WorkflowDefinitionInput {
  variables?: Readonly<Record<string, WorkflowVariableDeclaration>>;
  steps: readonly WorkflowStepInput[];
}

/** One thing wrong with a definition or a trigger; `path` names the field (`steps[2].payload.cmd`). */
export interface WorkflowProblem {
  path: string;
  message: string;
}

export type WorkflowValidation = { ok: true; order: string[] } | { ok: false; problems: WorkflowProblem[] };

export type TemplateReference =
  | { source: 'vars'; name: string; path: string[] }
  | { source: 'steps'; key: string; path: string[] };

/**
 * The longest string in a step's payload that may hold a template (`{{`), in UTF-16 code
 * units (JavaScript `length`): 64 KiB. Longer strings with a template are refused by
 * `validateWorkflow`, so rendering stays cheap; strings without `{{` are not limited here.
 */
export const MAX_TEMPLATE_STRING_LENGTH = 64 * 1024;

/** One `{{ … }}` found in a string: `[start, end)` in the string and the text between the braces. */
export interface TemplateMatch {
  start: number;
  end: number;
  expression: string;
}

/**
 * Finds the templates of a string in one pass: each `{{` up to the first `}}` after it, so
 * `{{a}} and {{b}}` is two templates and an unclosed `{{` stays plain text. It gives what the
 * lazy regex `/\{\{([\s\S]*?)\}\}/g` gives, without the regex's quadratic time on many
 * unclosed `{{` (20 000 characters took 100 ms that way; a 1 MiB string minutes).
 * @example [...scanTemplates('a {{vars.x}} b')] // [{ start: 2, end: 12, expression: 'vars.x' }]
 */
export function* scanTemplates(text: string): Generator<TemplateMatch> {
  let from = 0;
  for (;;) {
    const start = text.indexOf('{{', from);
    if (start === -1) return;
    const close = text.indexOf('}}', start + 2);
    // No `}}` after this `{{` means none after any later `{{` either.
    if (close === -1) return;
    yield { start, end: close + 2, expression: text.slice(start + 2, close) };
    from = close + 2;
  }
}

/** The expression of a string that is exactly one template (`{{x}}`, nothing around it), else null. */
function wholeTemplateExpression(text: string): string | null {
  if (text.length < 4 || !text.startsWith('{{') || !text.endsWith('}}')) return null;
  const inner = text.slice(2, -2);
  // `{{a}}{{b}}` starts and ends with braces but is two templates.
  return inner.includes('}}') ? null : inner;
}

const VARS_REF = /^vars\.([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_-]+)*)$/;
const STEPS_REF = /^steps\.([A-Za-z0-9_-]+)\.result((?:\.[A-Za-z0-9_-]+)*)$/;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Parses the expression between `{{` and `}}`; null when it is neither form.
 * @example parseTemplateExpression(' steps.build.result.sha ') // { source: 'steps', key: 'build', path: ['sha'] }
 */
export function parseTemplateExpression(expression: string): TemplateReference | null {
  const trimmed = expression.trim();
  const vars = VARS_REF.exec(trimmed);
  if (vars) return { source: 'vars', name: vars[1]!, path: splitPath(vars[2]!) };
  const steps = STEPS_REF.exec(trimmed);
  if (steps) return { source: 'steps', key: steps[1]!, path: splitPath(steps[2]!) };
  return null;
}

function splitPath(rest: string): string[] {
  return rest === '' ? [] : rest.slice(1).split('.');
}

function fieldPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return IDENTIFIER.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Calls `visit` for every string inside a JSON value (values only, not keys), with its path. */
function forEachString(value: unknown, path: string, visit: (text: string, path: string) => void): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) forEachString(item, fieldPath(path, i), visit);
  } else if (isPlainObject(value))
    for (const [key, item] of Object.entries(value)) forEachString(item, fieldPath(path, key), visit);
}

/** The JSON type of a value as variable declarations name them; null when none fits. */
function jsonTypeOf(value: unknown): WorkflowVariableType | 'null' | null {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isFinite(value) ? 'number' : null;
  if (typeof value === 'string' || typeof value === 'boolean') return typeof value as 'string' | 'boolean';
  return isPlainObject(value) ? 'object' : null;
}

/**
 * Checks a workflow definition and, when it is sound, gives a topological order of its steps
 * (dependencies first; among ready steps, definition order). Finds duplicate keys, unknown and
 * self dependencies, cycles (each named, `a → b → a`, in the direction work flows), variable
 * defaults of the wrong type, and payload templates that are malformed, name an undeclared
 * variable, or read a step that is not upstream of the step that reads it.
 * @example
 * validateWorkflow({ steps: [{ key: 'a' }, { key: 'b', depends_on: ['a'] }] }) // { ok: true, order: ['a', 'b'] }
 */
export function validateWorkflow(def: WorkflowDefinitionInput): WorkflowValidation {
  const problems: WorkflowProblem[] = [];
  const { steps } = def;
  const declared = def.variables ?? {};

  for (const [name, declaration] of Object.entries(declared)) {
    if (declaration.default === undefined) continue;
    const actual = jsonTypeOf(declaration.default);
    if (actual !== declaration.type)
      problems.push({
        path: `${fieldPath('variables', name)}.default`,
        message: `default of variable "${name}" must be ${article(declaration.type)}, got ${describeType(declaration.default)}`,
      });
  }

  const indicesByKey = new Map<string, number[]>();
  steps.forEach((step, i) => {
    const seen = indicesByKey.get(step.key);
    if (seen) seen.push(i);
    else indicesByKey.set(step.key, [i]);
  });
  for (const [key, indices] of indicesByKey) {
    if (indices.length < 2) continue;
    const where = indices.map((i) => `steps[${i}]`).join(', ');
    for (const i of indices.slice(1))
      problems.push({ path: `steps[${i}].key`, message: `duplicate step key "${key}" (used by ${where})` });
  }

  // Edges of known keys only; with duplicate keys the steps' dependencies are merged.
  const depsByKey = new Map<string, Set<string>>();
  steps.forEach((step, i) => {
    const deps = depsByKey.get(step.key) ?? new Set<string>();
    depsByKey.set(step.key, deps);
    (step.depends_on ?? []).forEach((dep, j) => {
      const path = `steps[${i}].depends_on[${j}]`;
      if (dep === step.key) problems.push({ path, message: `step "${step.key}" depends on itself` });
      else if (!indicesByKey.has(dep))
        problems.push({ path, message: `step "${step.key}" depends on unknown step "${dep}"` });
      else deps.add(dep);
    });
  });

  for (const cycle of findCycles(depsByKey, [...indicesByKey.keys()]))
    problems.push({
      path: `steps[${indicesByKey.get(cycle[0]!)![0]}].depends_on`,
      message: `dependency cycle: ${[...cycle, cycle[0]].join(' → ')}`,
    });

  const upstreamOf = upstreamSets(depsByKey);
  steps.forEach((step, i) => {
    forEachString(step.payload, `steps[${i}].payload`, (text, path) => {
      if (text.length > MAX_TEMPLATE_STRING_LENGTH && text.includes('{{')) {
        problems.push({
          path,
          message: `holds a template and is ${text.length} characters long; a string with templates may be at most ${MAX_TEMPLATE_STRING_LENGTH}`,
        });
        return;
      }
      for (const match of scanTemplates(text)) {
        const template = text.slice(match.start, match.end);
        const ref = parseTemplateExpression(match.expression);
        if (ref === null) {
          problems.push({
            path,
            message: `unsupported template ${template}: use {{vars.<name>}} or {{steps.<key>.result…}}`,
          });
        } else if (ref.source === 'vars') {
          if (!Object.hasOwn(declared, ref.name))
            problems.push({ path, message: `template ${template} names undeclared variable "${ref.name}"` });
        } else if (ref.key === step.key) {
          problems.push({
            path,
            message: `template ${template} reads the result of its own step "${step.key}"`,
          });
        } else if (!indicesByKey.has(ref.key)) {
          problems.push({ path, message: `template ${template} names unknown step "${ref.key}"` });
        } else if (!upstreamOf(step.key).has(ref.key)) {
          problems.push({
            path,
            message: `template ${template}: step "${ref.key}" is not upstream of step "${step.key}" (add it to depends_on)`,
          });
        }
      }
    });
  });

  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, order: topologicalOrder(steps) };
}

/** What a value is, for messages: its JSON type, or e.g. `NaN` for what JSON cannot hold. */
function describeType(value: unknown): string {
  return jsonTypeOf(value) ?? (typeof value === 'number' ? String(value) : typeof value);
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/**
 * One cycle per strongly connected component (Tarjan), each as its keys in the direction
 * work flows (dependency before dependent), starting at the component's first key in
 * definition order. One named cycle per tangle is enough to fix it and keeps messages short.
 */
function findCycles(
  depsByKey: ReadonlyMap<string, ReadonlySet<string>>,
  keys: readonly string[],
): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;

  // Recursion depth is bounded by the number of steps (at most 200 through the API).
  const connect = (key: string): void => {
    index.set(key, counter);
    low.set(key, counter);
    counter++;
    stack.push(key);
    onStack.add(key);
    for (const dep of depsByKey.get(key) ?? []) {
      if (!index.has(dep)) {
        connect(dep);
        low.set(key, Math.min(low.get(key)!, low.get(dep)!));
      } else if (onStack.has(dep)) {
        low.set(key, Math.min(low.get(key)!, index.get(dep)!));
      }
    }
    if (low.get(key) === index.get(key)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== key);
      if (component.length > 1) components.push(component);
    }
  };
  for (const key of keys) if (!index.has(key)) connect(key);

  const position = new Map(keys.map((key, i) => [key, i]));
  return components
    .map((component) => {
      const start = component.reduce((a, b) => (position.get(a)! <= position.get(b)! ? a : b));
      return shortestCycleThrough(start, new Set(component), depsByKey);
    })
    .sort((a, b) => position.get(a[0]!)! - position.get(b[0]!)!);
}

/** The shortest cycle through `start` inside one component, in the direction work flows. */
function shortestCycleThrough(
  start: string,
  component: ReadonlySet<string>,
  depsByKey: ReadonlyMap<string, ReadonlySet<string>>,
): string[] {
  // Breadth-first along depends_on (against the flow) until we come back to start.
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const key = queue[head]!;
    for (const dep of depsByKey.get(key) ?? []) {
      if (!component.has(dep)) continue;
      if (dep === start) {
        // Walking back from `key`, each key is a dependency of the one after it: that is the
        // flow order, and `key` flows into `start`, which closes the cycle.
        const flow: string[] = [];
        for (let k = key; k !== start; k = cameFrom.get(k)!) flow.push(k);
        return [start, ...flow];
      }
      if (!cameFrom.has(dep)) {
        cameFrom.set(dep, key);
        queue.push(dep);
      }
    }
  }
  return [start]; // unreachable for a strongly connected component of two or more keys
}

/** Transitive dependencies of each key, computed on demand and memoised; safe on cycles. */
function upstreamSets(depsByKey: ReadonlyMap<string, ReadonlySet<string>>): (key: string) => Set<string> {
  const memo = new Map<string, Set<string>>();
  return (key) => {
    const cached = memo.get(key);
    if (cached) return cached;
    const seen = new Set<string>();
    const pending = [...(depsByKey.get(key) ?? [])];
    while (pending.length > 0) {
      const dep = pending.pop()!;
      if (seen.has(dep)) continue;
      seen.add(dep);
      pending.push(...(depsByKey.get(dep) ?? []));
    }
    memo.set(key, seen);
    return seen;
  };
}

/** Kahn's algorithm over a definition already known to be acyclic with unique keys. */
function topologicalOrder(steps: readonly WorkflowStepInput[]): string[] {
  const order: string[] = [];
  const done = new Set<string>();
  let ready = dependentsReady(steps, done);
  while (ready.length > 0) {
    for (const key of ready) {
      order.push(key);
      done.add(key);
    }
    ready = dependentsReady(steps, done);
  }
  return order;
}

/**
 * The steps that can start now: not done themselves, and every dependency done. With no step
 * done these are the roots. The caller releases those of them that are still PENDING.
 * @example
 * dependentsReady([{ key: 'a' }, { key: 'b', depends_on: ['a'] }], ['a']) // ['b']
 */
export function dependentsReady(
  steps: readonly { key: string; depends_on?: readonly string[] }[],
  doneKeys: Iterable<string>,
): string[] {
  const done = doneKeys instanceof Set ? (doneKeys as ReadonlySet<string>) : new Set(doneKeys);
  return steps
    .filter((step) => !done.has(step.key) && (step.depends_on ?? []).every((dep) => done.has(dep)))
    .map((step) => step.key);
}

export interface RenderContext {
  /** Resolved variables (see `resolveVariables`). */
  vars?: Readonly<Record<string, unknown>>;
  /** Upstream steps by key, each with the `result` it completed with. */
  steps?: Readonly<Record<string, { result?: unknown }>>;
}

/** Follows a template reference through own properties only (never the prototype chain). */
function lookup(ref: TemplateReference, context: RenderContext): unknown {
  let value: unknown;
  if (ref.source === 'vars') {
    const vars = context.vars ?? {};
    value = Object.hasOwn(vars, ref.name) ? vars[ref.name] : undefined;
  } else {
    const steps = context.steps ?? {};
    value = Object.hasOwn(steps, ref.key) ? steps[ref.key]?.result : undefined;
  }
  for (const segment of ref.path) {
    if (Array.isArray(value)) value = /^\d+$/.test(segment) ? value[Number(segment)] : undefined;
    else if (isPlainObject(value)) value = Object.hasOwn(value, segment) ? value[segment] : undefined;
    else return undefined;
  }
  return value;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? '';
}

function renderString(text: string, context: RenderContext): unknown {
  const whole = wholeTemplateExpression(text);
  if (whole !== null) {
    const ref = parseTemplateExpression(whole);
    if (ref) return lookup(ref, context) ?? null;
  }
  const parts: string[] = [];
  let copied = 0;
  for (const match of scanTemplates(text)) {
    const ref = parseTemplateExpression(match.expression);
    if (!ref) continue;
    parts.push(text.slice(copied, match.start), asText(lookup(ref, context)));
    copied = match.end;
  }
  if (copied === 0) return text;
  parts.push(text.slice(copied));
  return parts.join('');
}

/**
 * A payload with its templates replaced (see the module comment for the syntax).
 * - A string that is exactly one template (whitespace only inside the braces) becomes the
 *   value itself, with its JSON type: `"{{steps.a.result.count}}"` → `3`. A missing variable,
 *   step or path gives `null`.
 * - A template inside a longer string is interpolated as text: strings as they are, numbers
 *   and booleans as written, objects and arrays as JSON; `null` and missing values as `''`.
 * - Object keys are copied as they are; anything that is not a valid template (`{{ 1 + 1 }}`)
 *   is left untouched, since `validateWorkflow` has already refused it in a stored definition.
 * @example
 * renderPayload({ n: '{{vars.n}}', msg: 'n={{vars.n}}' }, { vars: { n: 3 } }) // { n: 3, msg: 'n=3' }
 */
export function renderPayload(
  payload: Readonly<Record<string, unknown>>,
  context: RenderContext,
): Record<string, unknown>;
export function renderPayload(payload: unknown, context: RenderContext): unknown;
export function renderPayload(payload: unknown, context: RenderContext): unknown {
  if (typeof payload === 'string') return renderString(payload, context);
  if (Array.isArray(payload)) return payload.map((item) => renderPayload(item, context));
  if (isPlainObject(payload))
    // fromEntries defines own properties, so a key such as "__proto__" stays a plain key.
    return Object.fromEntries(
      Object.entries(payload).map(([key, item]) => [key, renderPayload(item, context)]),
    );
  return payload;
}

export type VariableResolution =
  | { ok: true; values: Record<string, unknown> }
  | { ok: false; problems: WorkflowProblem[] };

/**
 * The variables of a run: the trigger's values checked against the declarations, defaults
 * filled in. Refuses unknown names, missing required variables (a default satisfies
 * `required`) and values of the wrong JSON type (`null` is no type). An optional variable
 * without a default that is not given stays absent, so its templates render as missing.
 * Problem paths are `variables.<name>`, as in the trigger body.
 * @example
 * resolveVariables({ env: { type: 'string', default: 'dev' } }, {}) // { ok: true, values: { env: 'dev' } }
 */
export function resolveVariables(
  declared: Readonly<Record<string, WorkflowVariableDeclaration>> | undefined,
  given: Readonly<Record<string, unknown>> | undefined,
): VariableResolution {
  const declarations = declared ?? {};
  const input = given ?? {};
  const problems: WorkflowProblem[] = [];
  const values: [string, unknown][] = [];

  for (const name of Object.keys(input))
    if (!Object.hasOwn(declarations, name)) {
      const known = Object.keys(declarations);
      problems.push({
        path: fieldPath('variables', name),
        message: `unknown variable "${name}"${known.length > 0 ? ` (declared: ${known.join(', ')})` : ' (the workflow declares none)'}`,
      });
    }

  for (const [name, declaration] of Object.entries(declarations)) {
    const path = fieldPath('variables', name);
    const value = Object.hasOwn(input, name) ? input[name] : undefined;
    if (value === undefined) {
      if (declaration.default !== undefined) values.push([name, declaration.default]);
      else if (declaration.required)
        problems.push({ path, message: `variable "${name}" (${declaration.type}) is required` });
      continue;
    }
    const actual = jsonTypeOf(value);
    if (actual !== declaration.type)
      problems.push({
        path,
        message: `variable "${name}" must be ${article(declaration.type)}, got ${describeType(value)}`,
      });
    else values.push([name, value]);
  }

  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, values: Object.fromEntries(values) };
}

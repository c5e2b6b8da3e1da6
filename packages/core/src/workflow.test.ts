import { describe, expect, it } from 'vitest';
import {
  dependentsReady,
  MAX_TEMPLATE_STRING_LENGTH,
  parseTemplateExpression,
  renderPayload,
  resolveVariables,
  scanTemplates,
  validateWorkflow,
  type WorkflowDefinitionInput,
  type WorkflowStepInput,
} from './workflow';

const diamond: WorkflowStepInput[] = [
  { key: 'a' },
  { key: 'b', depends_on: ['a'] },
  { key: 'c', depends_on: ['a'] },
  { key: 'd', depends_on: ['b', 'c'] },
];

/** Asserts that `order` lists every step once, each after all of its dependencies. */
function expectTopological(order: string[], steps: readonly WorkflowStepInput[]): void {
  expect([...order].sort()).toEqual(steps.map((s) => s.key).sort());
  for (const step of steps)
    for (const dep of step.depends_on ?? []) expect(order.indexOf(dep)).toBeLessThan(order.indexOf(step.key));
}

function problemsOf(def: WorkflowDefinitionInput) {
  const result = validateWorkflow(def);
  if (result.ok) throw new Error(`expected problems, got order ${result.order.join(', ')}`);
  return result.problems;
}

describe('validateWorkflow: the graph', () => {
  it('accepts the diamond A → B, A → C, B,C → D and orders it dependencies first', () => {
    const result = validateWorkflow({ steps: diamond });
    expect(result).toEqual({ ok: true, order: ['a', 'b', 'c', 'd'] });
    if (result.ok) expectTopological(result.order, diamond);
  });

  it('orders steps listed before their dependencies', () => {
    const steps = [
      { key: 'report', depends_on: ['lint', 'test'] },
      { key: 'test', depends_on: ['checkout'] },
      { key: 'lint', depends_on: ['checkout'] },
      { key: 'checkout' },
    ];
    const result = validateWorkflow({ steps });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expectTopological(result.order, steps);
      expect(result.order[0]).toBe('checkout');
      expect(result.order.at(-1)).toBe('report');
    }
  });

  it('accepts a single step and independent steps in definition order', () => {
    expect(validateWorkflow({ steps: [{ key: 'only' }] })).toEqual({ ok: true, order: ['only'] });
    expect(validateWorkflow({ steps: [{ key: 'x' }, { key: 'y' }, { key: 'z' }] })).toEqual({
      ok: true,
      order: ['x', 'y', 'z'],
    });
  });

  it('names a two-step cycle', () => {
    expect(
      problemsOf({
        steps: [
          { key: 'a', depends_on: ['b'] },
          { key: 'b', depends_on: ['a'] },
        ],
      }),
    ).toEqual([{ path: 'steps[0].depends_on', message: 'dependency cycle: a → b → a' }]);
  });

  it('names a three-step cycle in the direction work flows', () => {
    // b waits for a, c for b, a for c: work would flow a → b → c → a.
    expect(
      problemsOf({
        steps: [
          { key: 'a', depends_on: ['c'] },
          { key: 'b', depends_on: ['a'] },
          { key: 'c', depends_on: ['b'] },
        ],
      }),
    ).toEqual([{ path: 'steps[0].depends_on', message: 'dependency cycle: a → b → c → a' }]);
  });

  it('names a cycle downstream of a sound root, and each separate cycle once', () => {
    const problems = problemsOf({
      steps: [
        { key: 'root' },
        { key: 'x', depends_on: ['root', 'y'] },
        { key: 'y', depends_on: ['x'] },
        { key: 'p', depends_on: ['q'] },
        { key: 'q', depends_on: ['r'] },
        { key: 'r', depends_on: ['p'] },
        { key: 'after', depends_on: ['r'] },
      ],
    });
    expect(problems).toEqual([
      { path: 'steps[1].depends_on', message: 'dependency cycle: x → y → x' },
      { path: 'steps[3].depends_on', message: 'dependency cycle: p → r → q → p' },
    ]);
  });

  it('refuses a step that depends on itself, naming the entry', () => {
    expect(problemsOf({ steps: [{ key: 'a' }, { key: 'b', depends_on: ['a', 'b'] }] })).toEqual([
      { path: 'steps[1].depends_on[1]', message: 'step "b" depends on itself' },
    ]);
  });

  it('refuses a dependency on an unknown step', () => {
    expect(problemsOf({ steps: [{ key: 'a' }, { key: 'b', depends_on: ['nope'] }] })).toEqual([
      { path: 'steps[1].depends_on[0]', message: 'step "b" depends on unknown step "nope"' },
    ]);
  });

  it('refuses duplicate keys, naming every index that uses them', () => {
    const problems = problemsOf({ steps: [{ key: 'a' }, { key: 'b' }, { key: 'a' }, { key: 'a' }] });
    expect(problems).toEqual([
      { path: 'steps[2].key', message: 'duplicate step key "a" (used by steps[0], steps[2], steps[3])' },
      { path: 'steps[3].key', message: 'duplicate step key "a" (used by steps[0], steps[2], steps[3])' },
    ]);
  });

  it('reports every problem at once rather than the first', () => {
    const problems = problemsOf({
      steps: [
        { key: 'a', depends_on: ['a', 'ghost'] },
        { key: 'a' },
        { key: 'b', payload: { x: '{{vars.nope}}' } },
      ],
    });
    expect(problems.map((p) => p.path)).toEqual([
      'steps[1].key',
      'steps[0].depends_on[0]',
      'steps[0].depends_on[1]',
      'steps[2].payload.x',
    ]);
  });
});

describe('validateWorkflow: templates', () => {
  const withPayload = (payload: unknown, variables: WorkflowDefinitionInput['variables'] = {}) =>
    validateWorkflow({
      variables,
      steps: [...diamond.slice(0, 3), { key: 'd', depends_on: ['b', 'c'], payload }],
    });

  it('accepts references to direct and transitive upstream steps and declared variables', () => {
    const result = withPayload(
      {
        from_b: '{{steps.b.result}}',
        from_a: 'sha={{ steps.a.result.commit.sha }} on {{vars.branch}}',
        deep: [{ files: '{{steps.c.result.files.0.name}}' }],
      },
      { branch: { type: 'string' } },
    );
    expect(result.ok).toBe(true);
  });

  it('refuses a reference to a sibling, naming both steps and the field', () => {
    const result = validateWorkflow({
      steps: [
        ...diamond.slice(0, 2),
        { key: 'c', depends_on: ['a'], payload: { cmd: 'echo {{steps.b.result}}' } },
        diamond[3]!,
      ],
    });
    expect(result).toEqual({
      ok: false,
      problems: [
        {
          path: 'steps[2].payload.cmd',
          message: 'template {{steps.b.result}}: step "b" is not upstream of step "c" (add it to depends_on)',
        },
      ],
    });
  });

  it('refuses a reference to a downstream step', () => {
    const problems = problemsOf({
      steps: [{ key: 'a', payload: { x: '{{steps.d.result.y}}' } }, ...diamond.slice(1)],
    });
    expect(problems).toEqual([
      {
        path: 'steps[0].payload.x',
        message: 'template {{steps.d.result.y}}: step "d" is not upstream of step "a" (add it to depends_on)',
      },
    ]);
  });

  it("refuses a reference to an unknown step and to the step's own result", () => {
    expect(
      problemsOf({ steps: [{ key: 'a', payload: { x: '{{steps.zz.result}}', y: '{{steps.a.result}}' } }] }),
    ).toEqual([
      { path: 'steps[0].payload.x', message: 'template {{steps.zz.result}} names unknown step "zz"' },
      {
        path: 'steps[0].payload.y',
        message: 'template {{steps.a.result}} reads the result of its own step "a"',
      },
    ]);
  });

  it('refuses an undeclared variable', () => {
    expect(withPayload({ branch: '{{vars.branch}}' }, { env: { type: 'string' } })).toEqual({
      ok: false,
      problems: [
        {
          path: 'steps[3].payload.branch',
          message: 'template {{vars.branch}} names undeclared variable "branch"',
        },
      ],
    });
    // Without any declarations, too; and not fooled by Object.prototype.
    expect(problemsOf({ steps: [{ key: 'a', payload: { x: '{{vars.constructor}}' } }] })).toHaveLength(1);
  });

  it('refuses any other template expression, naming it', () => {
    for (const template of [
      '{{ 1 + 1 }}',
      '{{steps.a.output}}',
      '{{steps.a}}',
      '{{vars}}',
      '{{env.HOME}}',
      '{{}}',
      '{{ vars.x | upper }}',
      '{{ process.exit() }}',
    ]) {
      const problems = problemsOf({
        variables: { x: { type: 'string' } },
        steps: [{ key: 'a' }, { key: 'b', depends_on: ['a'], payload: { x: `run ${template}` } }],
      });
      expect(problems).toEqual([
        {
          path: 'steps[1].payload.x',
          message: `unsupported template ${template}: use {{vars.<name>}} or {{steps.<key>.result…}}`,
        },
      ]);
    }
  });

  it('names deep payload paths: nested objects, arrays and keys that are not identifiers', () => {
    const problems = problemsOf({
      steps: [
        {
          key: 'a',
          payload: {
            env: { vars: [{ value: 'ok' }, { value: '{{vars.a}}' }] },
            'with space': { 'x-y': '{{vars.b}}' },
            list: [['{{vars.c}}']],
          },
        },
      ],
    });
    expect(problems.map((p) => p.path)).toEqual([
      'steps[0].payload.env.vars[1].value',
      'steps[0].payload["with space"]["x-y"]',
      'steps[0].payload.list[0][0]',
    ]);
  });

  it('does not read templates in object keys, and ignores unclosed braces and non-strings', () => {
    const result = validateWorkflow({
      steps: [{ key: 'a', payload: { '{{vars.nope}}': 1, text: 'a {{ b', n: 5, f: null, t: true } }],
    });
    expect(result).toEqual({ ok: true, order: ['a'] });
  });

  it('reports each bad template of one string', () => {
    const problems = problemsOf({ steps: [{ key: 'a', payload: { x: '{{vars.p}} and {{vars.q}}' } }] });
    expect(problems.map((p) => p.message)).toEqual([
      'template {{vars.p}} names undeclared variable "p"',
      'template {{vars.q}} names undeclared variable "q"',
    ]);
  });

  it('refuses a variable default of the wrong type', () => {
    expect(
      problemsOf({
        variables: {
          n: { type: 'number', default: '3' },
          o: { type: 'object', default: [] },
          ok: { type: 'array', default: [] },
        },
        steps: [{ key: 'a' }],
      }),
    ).toEqual([
      { path: 'variables.n.default', message: 'default of variable "n" must be a number, got string' },
      { path: 'variables.o.default', message: 'default of variable "o" must be an object, got array' },
    ]);
  });
});

describe('parseTemplateExpression', () => {
  it('reads variables and step results with their paths', () => {
    expect(parseTemplateExpression('vars.branch')).toEqual({ source: 'vars', name: 'branch', path: [] });
    expect(parseTemplateExpression(' steps.build.result.files.0 ')).toEqual({
      source: 'steps',
      key: 'build',
      path: ['files', '0'],
    });
    expect(parseTemplateExpression('steps.build.result.')).toBeNull();
    expect(parseTemplateExpression('vars.1x')).toBeNull();
  });
});

describe('renderPayload', () => {
  const context = {
    vars: { branch: 'main', n: 3, flag: false, config: { depth: 1 } },
    steps: {
      build: { result: { sha: 'abc123', count: 2, files: [{ name: 'a.ts' }, { name: 'b.ts' }], meta: null } },
      lint: { result: 'clean' },
    },
  };

  it('gives a string that is exactly one template the value with its JSON type', () => {
    expect(
      renderPayload(
        {
          n: '{{vars.n}}',
          flag: '{{ vars.flag }}',
          config: '{{vars.config}}',
          files: '{{steps.build.result.files}}',
          whole: '{{steps.build.result}}',
          name: '{{steps.build.result.files.1.name}}',
          meta: '{{steps.build.result.meta}}',
        },
        context,
      ),
    ).toEqual({
      n: 3,
      flag: false,
      config: { depth: 1 },
      files: [{ name: 'a.ts' }, { name: 'b.ts' }],
      whole: context.steps.build.result,
      name: 'b.ts',
      meta: null,
    });
  });

  it('interpolates templates inside longer strings as text, objects as JSON', () => {
    expect(
      renderPayload(
        {
          cmd: 'git checkout {{vars.branch}} && echo {{steps.build.result.sha}}',
          n: 'n={{vars.n}}, flag={{vars.flag}}',
          json: 'config: {{vars.config}} files: {{steps.build.result.files}}',
          twice: '{{vars.branch}}{{vars.n}}',
          padded: ' {{vars.n}}',
        },
        context,
      ),
    ).toEqual({
      cmd: 'git checkout main && echo abc123',
      n: 'n=3, flag=false',
      json: 'config: {"depth":1} files: [{"name":"a.ts"},{"name":"b.ts"}]',
      twice: 'main3',
      padded: ' 3',
    });
  });

  it('renders missing variables, steps and paths as null whole and as empty text interpolated', () => {
    expect(
      renderPayload(
        {
          var: '{{vars.absent}}',
          step: '{{steps.ghost.result}}',
          path: '{{steps.build.result.nope.deeper}}',
          index: '{{steps.build.result.files.9}}',
          throughScalar: '{{steps.lint.result.length}}',
          proto: '{{steps.build.result.constructor}}',
          text: '[{{vars.absent}}|{{steps.build.result.meta}}|{{steps.build.result.sha.x}}]',
        },
        context,
      ),
    ).toEqual({
      var: null,
      step: null,
      path: null,
      index: null,
      throughScalar: null,
      proto: null,
      text: '[||]',
    });
  });

  it('walks nested objects and arrays, keeps keys and non-strings, and evaluates nothing', () => {
    const payload = {
      '{{vars.branch}}': 'key stays',
      steps: [{ run: '{{vars.branch}}' }, ['{{vars.n}}', 7, null, true]],
      code: '{{ process.exit(1) }}',
      open: 'a {{ b',
    };
    expect(renderPayload(payload, context)).toEqual({
      '{{vars.branch}}': 'key stays',
      steps: [{ run: 'main' }, [3, 7, null, true]],
      code: '{{ process.exit(1) }}',
      open: 'a {{ b',
    });
    expect(payload.steps[0]).toEqual({ run: '{{vars.branch}}' }); // the input is not changed
  });

  it('keeps a "__proto__" key a plain key', () => {
    const payload: Record<string, unknown> = JSON.parse('{"__proto__": {"polluted": "{{vars.branch}}"}}');
    const rendered = renderPayload(payload, context);
    expect(Object.getPrototypeOf(rendered)).toBe(Object.prototype);
    expect(Object.hasOwn(rendered, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('scanTemplates: linear time, same answers as the lazy regex it replaced', () => {
  // The regex the scan replaced, kept only as the oracle for short inputs.
  const lazyRegex = /\{\{([\s\S]*?)\}\}/g;
  const byRegex = (text: string) =>
    [...text.matchAll(lazyRegex)].map((m) => ({
      start: m.index,
      end: m.index + m[0].length,
      expression: m[1],
    }));
  const byScan = (text: string) => [...scanTemplates(text)];

  it.each([
    ['', []],
    ['plain', []],
    ['{{vars.a}}', ['vars.a']],
    ['{{a}} and {{b}}', ['a', 'b']],
    ['{{}}', ['']],
    ['unclosed {{ vars.a', []],
    ['{{a}} then unclosed {{ b', ['a']],
    ['closed first }} then {{a}}', ['a']],
    ['{{{a}}}', ['{a']],
    ['{{ {{a}} }}', [' {{a']],
    ['{{a}}}}', ['a']],
    ['{{{{{{', []],
    ['{{}}}}{{', ['']],
    ['{{ multi\nline }}', [' multi\nline ']],
  ])('%j gives %j', (text, expressions) => {
    expect(byScan(text).map((m) => m.expression)).toEqual(expressions);
    expect(byScan(text)).toEqual(byRegex(text));
  });

  it('agrees with the regex on random strings of braces and letters', () => {
    const alphabet = ['{', '}', 'a', ' ', '{{', '}}'];
    let seed = 17;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 2000; n++) {
      const text = Array.from(
        { length: Math.floor(random() * 24) },
        () => alphabet[Math.floor(random() * 6)],
      ).join('');
      expect(byScan(text), text).toEqual(byRegex(text));
    }
  });

  it('scans a 1 MiB string of unclosed and closed braces in linear time', () => {
    const unclosed = '{{'.repeat(512 * 1024);
    const closed = '{{a}}'.repeat(200 * 1024);
    const started = performance.now();
    expect(byScan(unclosed)).toEqual([]);
    expect(byScan(closed)).toHaveLength(200 * 1024);
    // Well under 100 ms here; the loose bound only keeps a loaded machine from flaking.
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('validateWorkflow: template-bearing string length', () => {
  const step = (payload: unknown) => ({ steps: [{ key: 'a', payload }] });

  it('refuses a string with a template longer than the cap, naming the field', () => {
    const long = `${'x'.repeat(MAX_TEMPLATE_STRING_LENGTH)}{{vars.a}}`;
    expect(problemsOf(step({ cmd: ['ok', long] }))).toEqual([
      {
        path: 'steps[0].payload.cmd[1]',
        message: `holds a template and is ${long.length} characters long; a string with templates may be at most 65536`,
      },
    ]);
  });

  it('accepts a string at the cap, and a longer string without templates', () => {
    const atCap = `{{vars.a}}${'x'.repeat(MAX_TEMPLATE_STRING_LENGTH - 10)}`;
    expect(atCap).toHaveLength(MAX_TEMPLATE_STRING_LENGTH);
    const def = { variables: { a: { type: 'string' as const } }, steps: [{ key: 'a', payload: { atCap } }] };
    expect(validateWorkflow(def).ok).toBe(true);
    expect(validateWorkflow(step({ script: 'x}}'.repeat(MAX_TEMPLATE_STRING_LENGTH) }))).toEqual({
      ok: true,
      order: ['a'],
    });
  });

  it('validates and renders a 1 MiB payload full of {{ in well under 100 ms', () => {
    // 16 strings of 64 KiB each: unclosed braces, valid templates and unsupported ones.
    const chunk = MAX_TEMPLATE_STRING_LENGTH;
    const payload = {
      unclosed: Array.from({ length: 6 }, () => '{{'.repeat(chunk / 2)),
      templates: Array.from({ length: 6 }, () => '{{vars.a}}'.repeat(chunk / 10)),
      nested: Array.from({ length: 4 }, () => '{{ {{'.repeat(chunk / 5)),
    };
    const def = { variables: { a: { type: 'string' as const } }, steps: [{ key: 'a', payload }] };
    expect(JSON.stringify(payload).length).toBeGreaterThan(1000 * 1000);
    const started = performance.now();
    const result = validateWorkflow(def);
    const rendered = renderPayload(payload, { vars: { a: 'x' } });
    const elapsed = performance.now() - started;
    expect(result.ok).toBe(true);
    expect(rendered.templates).toEqual(Array.from({ length: 6 }, () => 'x'.repeat(chunk / 10)));
    expect(elapsed).toBeLessThan(1000);
  });
});

describe('resolveVariables', () => {
  const declared = {
    branch: { type: 'string', required: true },
    depth: { type: 'number', default: 1 },
    dry_run: { type: 'boolean', default: false },
    config: { type: 'object' },
    targets: { type: 'array', required: true, default: ['prod'] },
  } as const;

  it('applies defaults and keeps what was given', () => {
    expect(resolveVariables(declared, { branch: 'main', depth: 5 })).toEqual({
      ok: true,
      values: { branch: 'main', depth: 5, dry_run: false, targets: ['prod'] },
    });
  });

  it('refuses a missing required variable without a default', () => {
    expect(resolveVariables(declared, {})).toEqual({
      ok: false,
      problems: [{ path: 'variables.branch', message: 'variable "branch" (string) is required' }],
    });
  });

  it('refuses values of the wrong type, null included', () => {
    const result = resolveVariables(declared, {
      branch: 7,
      depth: Number.NaN,
      dry_run: 'yes',
      config: [],
      targets: null,
    });
    expect(result).toEqual({
      ok: false,
      problems: [
        { path: 'variables.branch', message: 'variable "branch" must be a string, got number' },
        { path: 'variables.depth', message: 'variable "depth" must be a number, got NaN' },
        { path: 'variables.dry_run', message: 'variable "dry_run" must be a boolean, got string' },
        { path: 'variables.config', message: 'variable "config" must be an object, got array' },
        { path: 'variables.targets', message: 'variable "targets" must be an array, got null' },
      ],
    });
  });

  it('refuses unknown variables, naming the declared ones', () => {
    expect(resolveVariables(declared, { branch: 'x', brnach: 'y' })).toEqual({
      ok: false,
      problems: [
        {
          path: 'variables.brnach',
          message: 'unknown variable "brnach" (declared: branch, depth, dry_run, config, targets)',
        },
      ],
    });
    expect(resolveVariables(undefined, { toString: 'x' })).toEqual({
      ok: false,
      problems: [
        { path: 'variables.toString', message: 'unknown variable "toString" (the workflow declares none)' },
      ],
    });
  });

  it('accepts nothing given when nothing is declared', () => {
    expect(resolveVariables(undefined, undefined)).toEqual({ ok: true, values: {} });
  });

  it('feeds renderPayload', () => {
    const resolved = resolveVariables(declared, { branch: 'dev' });
    expect(resolved.ok).toBe(true);
    if (resolved.ok)
      expect(
        renderPayload(
          { depth: '{{vars.depth}}', ref: 'refs/heads/{{vars.branch}}' },
          { vars: resolved.values },
        ),
      ).toEqual({ depth: 1, ref: 'refs/heads/dev' });
  });
});

describe('dependentsReady', () => {
  it('releases the diamond step by step: A, then B and C, then D only after both', () => {
    expect(dependentsReady(diamond, [])).toEqual(['a']);
    expect(dependentsReady(diamond, ['a'])).toEqual(['b', 'c']);
    expect(dependentsReady(diamond, ['a', 'b'])).toEqual(['c']);
    expect(dependentsReady(diamond, new Set(['a', 'c']))).toEqual(['b']);
    expect(dependentsReady(diamond, ['a', 'b', 'c'])).toEqual(['d']);
    expect(dependentsReady(diamond, ['a', 'b', 'c', 'd'])).toEqual([]);
  });

  it('ignores done keys it does not know', () => {
    expect(dependentsReady(diamond, ['a', 'zz'])).toEqual(['b', 'c']);
  });
});

/**
 * Reading request JSON without silent changes. `JSON.parse` keeps the last of two equal keys,
 * turns `1e400` into `Infinity` (stored as `null`), rounds digits it cannot hold, and accepts any
 * nesting (which `JSON.stringify` then overflows on); PostgreSQL text and jsonb cannot hold NUL or
 * unpaired surrogates. This parser keeps every value it can represent exactly and reports, with its
 * path, each one it cannot, so the caller refuses (or, for agent outcomes, escapes) instead.
 */

/** A place in a JSON document: object keys and array indexes from the root. */
export type JsonPath = readonly (string | number)[];

export interface JsonIssue {
  path: JsonPath;
  message: string;
}

/**
 * Containers (objects and arrays) a request body may nest, the body itself included. 64 is reasoned,
 * not measured: far below the thousands of levels at which recursive serialisers (JSON.stringify,
 * PostgreSQL's jsonb) run out of stack, and deeper than structured payloads need.
 */
export const MAX_JSON_DEPTH = 64;

/** The text is not JSON at all; nothing can be salvaged from it. */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
}

/** `a.b[2].c`, as problems name fields. */
export function formatJsonPath(path: JsonPath): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
}

/**
 * Parses JSON text; values that cannot be kept exactly become `null` and an issue names them.
 * Throws {@link JsonSyntaxError} when the text is not JSON.
 * @example parseJsonText('{"n": 1e400}') // { value: { n: null }, issues: [{ path: ['n'], message: 'is out of range…' }] }
 */
export function parseJsonText(
  text: string,
  { maxDepth = MAX_JSON_DEPTH } = {},
): { value: unknown; issues: JsonIssue[] } {
  let pos = 0;
  const issues: JsonIssue[] = [];
  const path: (string | number)[] = [];

  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at position ${pos}`);
  };
  const skipSpace = () => {
    while (pos < text.length) {
      const ch = text.charCodeAt(pos);
      if (ch !== 0x20 && ch !== 0x0a && ch !== 0x0d && ch !== 0x09) break;
      pos++;
    }
  };

  const readString = (): string => {
    pos++; // the opening quote
    let out = '';
    let start = pos;
    while (true) {
      if (pos >= text.length) fail('unterminated string');
      const ch = text.charCodeAt(pos);
      if (ch === 0x22) {
        out += text.slice(start, pos);
        pos++;
        return out;
      }
      if (ch < 0x20) fail('unescaped control character in a string');
      if (ch !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(start, pos);
      const esc = text[pos + 1];
      if (esc === 'u') {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
        out += String.fromCharCode(Number.parseInt(hex, 16));
        pos += 6;
      } else {
        const plain = simpleEscapes[esc ?? ''];
        if (plain === undefined) fail('bad escape');
        out += plain;
        pos += 2;
      }
      start = pos;
    }
  };

  const numberToken = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const readNumber = (): number | null => {
    numberToken.lastIndex = pos;
    const match = numberToken.exec(text);
    if (!match) return fail('bad number');
    const token = match[0];
    pos += token.length;
    const n = Number(token);
    if (!Number.isFinite(n) || (n === 0 && decimalKey(token) !== '0')) {
      issues.push({
        path: [...path],
        message: 'is out of range: a number must be finite and within ±1.8e308',
      });
      return null;
    }
    if (String(n) !== token && decimalKey(String(n)) !== decimalKey(token)) {
      issues.push({
        path: [...path],
        message: `has more digits than a JSON number keeps here (it would be stored as ${n}); send it as a string`,
      });
      return null;
    }
    return n;
  };

  /** Steps over a container too deep to build, without recursing, so any depth is survivable. */
  const skipContainer = () => {
    let open = 0;
    do {
      if (pos >= text.length) fail('unterminated array or object');
      const ch = text[pos];
      if (ch === '"') {
        readString();
        continue;
      }
      if (ch === '[' || ch === '{') open++;
      else if (ch === ']' || ch === '}') open--;
      pos++;
    } while (open > 0);
  };

  const readValue = (depth: number): unknown => {
    skipSpace();
    const ch = text[pos];
    if ((ch === '{' || ch === '[') && depth > maxDepth) {
      issues.push({ path: [...path], message: `is nested deeper than ${maxDepth} levels` });
      skipContainer();
      return null;
    }
    if (ch === '{') return readObject(depth);
    if (ch === '[') return readArray(depth);
    if (ch === '"') return readString();
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) return readNumber();
    for (const [word, value] of literals) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    return fail(ch === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(ch)}`);
  };

  const readObject = (depth: number): Record<string, unknown> => {
    pos++;
    const out: Record<string, unknown> = {};
    skipSpace();
    if (text[pos] === '}') {
      pos++;
      return out;
    }
    while (true) {
      skipSpace();
      if (text[pos] !== '"') fail('expected a key');
      const key = readString();
      skipSpace();
      if (text[pos] !== ':') fail('expected ":"');
      pos++;
      path.push(key);
      if (Object.hasOwn(out, key))
        issues.push({ path: [...path], message: 'appears twice in the same object' });
      setOwn(out, key, readValue(depth + 1));
      path.pop();
      skipSpace();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === '}') {
        pos++;
        return out;
      }
      fail('expected "," or "}"');
    }
  };

  const readArray = (depth: number): unknown[] => {
    pos++;
    const out: unknown[] = [];
    skipSpace();
    if (text[pos] === ']') {
      pos++;
      return out;
    }
    while (true) {
      path.push(out.length);
      out.push(readValue(depth + 1));
      path.pop();
      skipSpace();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === ']') {
        pos++;
        return out;
      }
      fail('expected "," or "]"');
    }
  };

  const value = readValue(1);
  skipSpace();
  if (pos < text.length) fail('unexpected text after the JSON value');
  return { value, issues };
}

const simpleEscapes: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

const literals: [string, unknown][] = [
  ['true', true],
  ['false', false],
  ['null', null],
];

/**
 * Sets an own, enumerable property even for `__proto__`, which plain assignment would turn into a
 * prototype change (the key silently gone from the data).
 */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown) {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/**
 * A canonical form of a decimal literal, so `1.50`, `15e-1` and `1.5` compare equal while
 * `0.1000000000000000055511151231257827` and `0.1` do not.
 */
function decimalKey(token: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(token);
  if (!match) return token;
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  const digits = `${whole}${fraction}`.replace(/^0+/, '');
  if (digits === '') return '0';
  const significant = digits.replace(/0+$/, '');
  const scale = BigInt(exponent) - BigInt(fraction.length) + BigInt(digits.length - significant.length);
  return `${sign}${significant}e${scale}`;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point.
const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Why PostgreSQL could not store this text, or undefined when it can. */
export function unstorableReason(text: string): string | undefined {
  unstorable.lastIndex = 0;
  const found = unstorable.exec(text)?.[0];
  if (found === undefined) return undefined;
  if (found === '\u0000') return 'contains a NUL character (\\u0000), which cannot be stored';
  return `contains an unpaired surrogate (${escapeCodeUnit(found)}), which is not valid Unicode text`;
}

/**
 * Writes each NUL and unpaired surrogate as the six characters of its JSON escape (`\u0000`,
 * `\ud800`), so output that held them survives as readable text.
 * @example escapeUnstorable('a\u0000b') // 'a\\u0000b' (7 characters)
 */
export function escapeUnstorable(text: string): string {
  return text.replace(unstorable, escapeCodeUnit);
}

const escapeCodeUnit = (unit: string) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * Applies the text rule to a parsed body: strings and keys PostgreSQL cannot hold are escaped inside
 * the fields `escaped` names (`*` matches any key or index, e.g. `items.*.result`) and reported
 * everywhere else. Returns the value to keep: a copy, escapes applied, `__proto__` keys still data.
 */
export function checkStorableText(
  value: unknown,
  escaped: readonly string[] = [],
): { value: unknown; issues: JsonIssue[] } {
  const patterns = escaped.map((field) => field.split('.'));
  const issues: JsonIssue[] = [];
  const isEscaped = (path: JsonPath) =>
    patterns.some(
      (p) => p.length === path.length && p.every((seg, i) => seg === '*' || seg === String(path[i])),
    );

  const visit = (node: unknown, path: (string | number)[], escaping: boolean): unknown => {
    if (typeof node === 'string') {
      if (escaping) return escapeUnstorable(node);
      const reason = unstorableReason(node);
      if (reason) issues.push({ path: [...path], message: reason });
      return node;
    }
    if (Array.isArray(node)) {
      return node.map((item, i) => {
        path.push(i);
        const kept = visit(item, path, escaping || isEscaped(path));
        path.pop();
        return kept;
      });
    }
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(node)) {
        path.push(key);
        const inside = escaping || isEscaped(path);
        const reason = inside ? undefined : unstorableReason(key);
        if (reason) issues.push({ path: path.slice(0, -1), message: `has a key that ${reason}` });
        const kept = visit(item, path, inside);
        path.pop();
        setOwn(out, inside ? escapeUnstorable(key) : key, kept);
      }
      return out;
    }
    return node;
  };

  return { value: visit(value, [], isEscaped([])), issues };
}

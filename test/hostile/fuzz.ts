/**
 * What the property tests share: the one outcome allowed besides a result (a coded error with a
 * code and a hint), and arbitraries that damage a valid document (its JSON value, its text or its
 * bytes) rather than only generating noise, so that the parsers' deeper checks are reached too.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { isCodedError } from '@mcp-release/manifest';

/** Fails the test unless `err` is a coded error: a string code in upper snake case, a message and a hint. */
export function expectCoded(err: unknown, codes?: RegExp): void {
  if (!isCodedError(err)) throw new Error(`expected a coded error, got ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`, { cause: err });
  expect(typeof err.code).toBe('string');
  expect(err.code).toMatch(codes ?? /^[A-Z][A-Z0-9_]+$/);
  expect(err.message.length).toBeGreaterThan(0);
  expect(err.hint ?? '').not.toBe('');
}

/** Runs `fn`: its result, or undefined after checking that what it threw is a coded error. */
export function resultOrCoded<T>(fn: () => T, codes?: RegExp): T | undefined {
  try {
    return fn();
  } catch (err) {
    expectCoded(err, codes);
    return undefined;
  }
}

/** The async form of resultOrCoded. */
export async function settledOrCoded<T>(fn: () => Promise<T>, codes?: RegExp): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    expectCoded(err, codes);
    return undefined;
  }
}

/** Strings that break naive code: path tricks, control and format characters, lone surrogates, numbers as text. */
export const NASTY_STRINGS = [
  '',
  ' ',
  '..',
  '../x',
  '/etc/passwd',
  'C:\\x',
  'a\0b',
  'a\nb',
  '\r\n',
  '\ud800',
  '\udfff\ud800',
  '\u202e',
  '\ufeff',
  '$(id)',
  '`id`',
  '${{ github.token }}',
  '__proto__',
  'constructor',
  'toString',
  '-1',
  '1e999',
  'NaN',
  'null',
  'x'.repeat(300),
];

/** JSON-ish values, with the nasty strings and numbers that are not whole or not small. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>(...NASTY_STRINGS, -1, 0, 1.5, 2 ** 53, -(2 ** 63), 1e308, true, null, [], {}),
);

type Path = Array<string | number>;

/** Every place in a JSON value: the root, each key of each object and each index of each list. */
export function jsonPaths(value: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...jsonPaths(v, [...at, i])));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...jsonPaths(v, [...at, k]));
  return out;
}

type Edit = { kind: 'set'; value: unknown } | { kind: 'delete' } | { kind: 'duplicate' } | { kind: 'stringify' } | { kind: 'tweak'; at: number; char: string };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  hostileValue.map((value) => ({ kind: 'set' as const, value })),
  // one character of a string changed: a damaged digest, base64 field or name that still looks right
  fc.tuple(fc.nat(), fc.constantFrom('A', 'z', '0', '+', '/', '=', '-', '_', '.', ' ', '\n')).map(([at, char]) => ({ kind: 'tweak' as const, at, char })),
  fc.constant({ kind: 'delete' as const }),
  fc.constant({ kind: 'duplicate' as const }),
  fc.constant({ kind: 'stringify' as const }),
);

function applyEdit(root: unknown, where: Path, e: Edit): unknown {
  if (where.length === 0) return e.kind === 'set' ? e.value : e.kind === 'stringify' ? JSON.stringify(root) : root;
  const parentPath = where.slice(0, -1);
  let parent: unknown = root;
  for (const step of parentPath) parent = (parent as Record<string | number, unknown>)[step];
  const key = where[where.length - 1] as string | number;
  const holder = parent as Record<string | number, unknown>;
  if (e.kind === 'set') holder[key] = e.value;
  else if (e.kind === 'tweak') {
    const v = holder[key];
    if (typeof v === 'string' && v.length) {
      const i = e.at % v.length;
      holder[key] = v.slice(0, i) + (v[i] === e.char ? 'B' : e.char) + v.slice(i + 1);
    } else if (typeof v === 'number') holder[key] = v + 1;
  } else if (e.kind === 'stringify') holder[key] = JSON.stringify(holder[key]);
  else if (e.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete holder[key];
  } else if (Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(parent[key as number]));
  else holder[`${String(key)}-copy`] = structuredClone(holder[key]);
  return root;
}

/** A valid document with 1 to `max` edits at random places: a value set, a key deleted, an entry duplicated. */
export function mutatedJson(valid: unknown, max = 3): fc.Arbitrary<unknown> {
  return fc.array(fc.tuple(fc.nat(), edit), { minLength: 1, maxLength: max }).map((edits) => {
    let doc: unknown = structuredClone(valid);
    for (const [n, e] of edits) {
      const paths = jsonPaths(doc);
      doc = applyEdit(doc, paths[n % paths.length] as Path, e);
    }
    return doc;
  });
}

/** Text with a few characters cut, doubled or replaced at random places. */
export function mutatedText(valid: string, alphabet: readonly string[] = ['"', '{', '}', '[', ']', ',', ':', '\\', '\n', '-', ' ', '0', '\u0000', '\ud800']): fc.Arbitrary<string> {
  const op = fc.tuple(fc.nat(), fc.constantFrom('cut', 'double', 'replace', 'insert'), fc.constantFrom(...alphabet), fc.integer({ min: 1, max: 8 }));
  return fc.array(op, { minLength: 1, maxLength: 4 }).map((ops) => {
    let text = valid;
    for (const [n, kind, ch, len] of ops) {
      const i = text.length ? n % text.length : 0;
      if (kind === 'cut') text = text.slice(0, i) + text.slice(i + len);
      else if (kind === 'double') text = text.slice(0, i + len) + text.slice(i);
      else if (kind === 'replace') text = text.slice(0, i) + ch + text.slice(i + 1);
      else text = text.slice(0, i) + ch.repeat(len) + text.slice(i);
    }
    return text;
  });
}

/** Bytes with a few flipped, cut or inserted (invalid UTF-8 included). */
export function mutatedBytes(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  const op = fc.tuple(fc.nat(), fc.constantFrom('flip', 'cut', 'insert'), fc.integer({ min: 0, max: 255 }));
  return fc.array(op, { minLength: 1, maxLength: 4 }).map((ops) => {
    let bytes = Buffer.from(valid);
    for (const [n, kind, b] of ops) {
      const i = bytes.length ? n % bytes.length : 0;
      if (kind === 'flip' && bytes.length) bytes[i] = (bytes[i] as number) ^ (b || 0x80);
      else if (kind === 'cut') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
      else bytes = Buffer.concat([bytes.subarray(0, i), Buffer.of(b), bytes.subarray(i)]);
    }
    return new Uint8Array(bytes);
  });
}

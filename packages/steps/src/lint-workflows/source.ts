/**
 * Reading one workflow file: bytes → UTF-8 text → YAML document with source positions, under
 * hard limits so that hostile input (huge, deeply nested, alias-heavy, not UTF-8) becomes a
 * finding instead of a crash. Parsing happens once per file; every rule reads the same tree.
 */
import { Composer, LineCounter, Parser, isAlias, isMap, isScalar, isSeq, visit, type Alias, type CST, type Document, type Node, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';

/** Files larger than this are not parsed (a workflow is a few KiB; GitHub's own limit is lower still). */
export const MAX_WORKFLOW_BYTES = 1024 * 1024;
/** Deepest collection nesting read. Real workflows nest about 8 deep; the YAML composer recurses per level. */
export const MAX_NESTING = 64;

export type YamlValue = Scalar | YAMLMap | YAMLSeq;

/** A problem that makes a file unreadable as a workflow (reported as MR000). */
export interface SourceProblem {
  /** Offset into the text, or 0 when the text could not be decoded. */
  offset: number;
  /** Position in the bytes, for problems found before there is text. */
  line?: number;
  column?: number;
  message: string;
  fix: string;
}

/** One parsed workflow file and what is needed to turn offsets into line and column. */
export class WorkflowSource {
  private readonly aliases = new Map<Alias, YamlValue | null>();
  /** Keys repeated within one mapping (GitHub rejects them), in document order. */
  readonly duplicateKeys: Scalar[] = [];

  constructor(
    readonly text: string,
    readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {
    // One pass in document order resolves every alias to the last anchor of its name before it,
    // as YAML defines it. Alias.resolve would walk the whole document once per alias.
    // The same pass finds repeated keys with one Set per mapping (the YAML library's own check
    // compares every key with every other, which a hostile file turns into minutes).
    const anchors = new Map<string, YamlValue>();
    visit(doc, {
      Node: (_key, node) => {
        if (isAlias(node)) this.aliases.set(node, anchors.get(node.source) ?? null);
        else if (node.anchor) anchors.set(node.anchor, node as YamlValue);
        if (isMap(node)) {
          const seen = new Set<string>();
          for (const pair of node.items) {
            if (!isScalar(pair.key)) continue;
            const name = String(pair.key.value);
            if (seen.has(name)) this.duplicateKeys.push(pair.key);
            seen.add(name);
          }
        }
      },
    });
  }

  /** 1-based line and column (UTF-16 code units) of an offset. */
  position(offset: number): { line: number; column: number } {
    const { line, col } = this.lines.linePos(Math.max(0, Math.min(offset, this.text.length)));
    return { line: Math.max(1, line), column: Math.max(1, col) };
  }

  /** The node an alias stands for (aliases of aliases are followed), or the node itself. */
  resolve(node: unknown): YamlValue | null {
    let current = node;
    for (let hops = 0; hops < 32 && isAlias(current); hops++) current = this.aliases.get(current) ?? null;
    return isScalar(current) || isMap(current) || isSeq(current) ? current : null;
  }

  map(node: unknown): YAMLMap | null {
    const n = this.resolve(node);
    return isMap(n) ? n : null;
  }

  seq(node: unknown): YAMLSeq | null {
    const n = this.resolve(node);
    return isSeq(n) ? n : null;
  }

  /** A scalar's text (numbers and booleans as written by String), or undefined for collections. */
  scalar(node: unknown): { node: Scalar; value: string } | undefined {
    const n = this.resolve(node);
    if (!isScalar(n)) return undefined;
    const v = n.value;
    return { node: n, value: v === null || v === undefined ? '' : typeof v === 'string' ? v : String(v) };
  }

  /** The entries of a mapping with scalar keys, in source order. */
  entries(node: unknown): Array<{ key: string; keyNode: Node; value: unknown }> {
    const map = this.map(node);
    if (!map) return [];
    const out: Array<{ key: string; keyNode: Node; value: unknown }> = [];
    for (const pair of map.items) {
      const k = this.scalar(pair.key);
      if (k && pair.key) out.push({ key: k.value, keyNode: pair.key as Node, value: pair.value });
    }
    return out;
  }

  /** The first entry named `key` in a mapping. */
  get(node: unknown, key: string): { keyNode: Node; value: unknown } | undefined {
    return this.entries(node).find((e) => e.key === key);
  }

  /** Start offset of a node (an alias's own position, not its anchor's). */
  offsetOf(node: unknown): number {
    const range = (node as Node | null | undefined)?.range;
    return range ? range[0] : 0;
  }

  /**
   * Where a match inside a scalar's value sits in the source. Values are what the shell sees
   * (block indentation removed, escapes resolved), so the match is looked up in the scalar's raw
   * source: the n-th occurrence of `needle` there, for the n-th in the value. Falls back to the
   * scalar's start when the raw text spells it differently (folded lines, escapes).
   */
  locate(node: Scalar, value: string, index: number, needle: string): number {
    const range = node.range;
    if (!range) return 0;
    const raw = this.text.slice(range[0], range[1]);
    let nth = 0;
    for (let i = value.indexOf(needle); i !== -1 && i < index; i = value.indexOf(needle, i + 1)) nth++;
    let at = -1;
    for (let i = 0, from = 0; i <= nth; i++) {
      const next = raw.indexOf(needle, from);
      if (next === -1) break;
      at = next;
      from = next + 1;
    }
    return at === -1 ? range[0] : range[0] + at;
  }

  /** The rest of the source line after a node (where a trailing `# comment` sits). */
  restOfLine(node: Node): string {
    const end = node.range ? node.range[1] : 0;
    const newline = this.text.indexOf('\n', end);
    return this.text.slice(end, newline === -1 ? undefined : newline);
  }
}

export type Decoded = { ok: true; text: string } | { ok: false; problem: SourceProblem };

/** UTF-8 text of a file's bytes, refusing oversized and non-UTF-8 input. */
export function decodeWorkflow(input: string | Uint8Array, maxBytes = MAX_WORKFLOW_BYTES): Decoded {
  if (typeof input === 'string') {
    const size = Buffer.byteLength(input, 'utf8');
    if (size > maxBytes) return { ok: false, problem: tooLarge(size, maxBytes) };
    if (!input.isWellFormed()) {
      return { ok: false, problem: { offset: 0, message: 'the text is not well-formed Unicode (it has an unpaired surrogate)', fix: 'save the file as UTF-8' } };
    }
    return { ok: true, text: input.startsWith('\uFEFF') ? input.slice(1) : input };
  }
  if (input.byteLength > maxBytes) return { ok: false, problem: tooLarge(input.byteLength, maxBytes) };
  const bom = utf16Or32Bom(input);
  if (bom) {
    return { ok: false, problem: { offset: 0, message: `the file is ${bom} (it starts with a ${bom} byte-order mark), not UTF-8`, fix: 'save the workflow as UTF-8; GitHub reads workflows as UTF-8' } };
  }
  try {
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(input) };
  } catch {
    const { at, line, column } = firstInvalidUtf8(input);
    return {
      ok: false,
      problem: {
        offset: 0,
        line,
        column,
        message: `the file is not valid UTF-8 (byte 0x${(input[at] ?? 0).toString(16).padStart(2, '0')} at byte offset ${at} starts no valid sequence)`,
        fix: 'save the workflow as UTF-8; GitHub reads workflows as UTF-8',
      },
    };
  }
}

export function tooLarge(size: number, max: number): SourceProblem {
  return {
    offset: 0,
    message: `the file is ${size} bytes; the linter reads workflows of at most ${max} bytes, so it was not checked`,
    fix: 'split the workflow (reusable workflows, composite actions) or check that this is really a workflow file',
  };
}

function utf16Or32Bom(b: Uint8Array): string | undefined {
  if (b[0] === 0x00 && b[1] === 0x00 && b[2] === 0xfe && b[3] === 0xff) return 'UTF-32';
  if (b[0] === 0xff && b[1] === 0xfe && b[2] === 0x00 && b[3] === 0x00) return 'UTF-32';
  if ((b[0] === 0xfe && b[1] === 0xff) || (b[0] === 0xff && b[1] === 0xfe)) return 'UTF-16';
  return undefined;
}

/** Byte index of the first ill-formed UTF-8 sequence, with its line and column (for the message). */
function firstInvalidUtf8(b: Uint8Array): { at: number; line: number; column: number } {
  const text = new TextDecoder('utf-8').decode(b);
  let at = 0;
  for (let i = text.indexOf('\uFFFD'); i !== -1; i = text.indexOf('\uFFFD', i + 1)) {
    at = Buffer.byteLength(text.slice(0, i), 'utf8');
    // A U+FFFD written in the file as EF BF BD is valid; keep looking.
    if (!(b[at] === 0xef && b[at + 1] === 0xbf && b[at + 2] === 0xbd)) break;
  }
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < at; i++) {
    if (b[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { at, line, column: at - lineStart + 1 };
}

export type Parsed = { ok: true; source: WorkflowSource } | { ok: false; problems: SourceProblem[]; source?: WorkflowSource };

/** Parses one YAML document with positions; syntax errors, extra documents and excess nesting are problems. */
export function parseWorkflowYaml(text: string): Parsed {
  const lines = new LineCounter();
  let tokens: CST.Token[];
  try {
    tokens = [...new Parser(lines.addNewLine).parse(text)];
  } catch (err) {
    return { ok: false, problems: [{ offset: 0, message: `the YAML could not be read: ${(err as Error).message}`, fix: 'fix the YAML syntax' }] };
  }
  const deep = deepestOffset(tokens);
  if (deep !== undefined) {
    const { line, col } = lines.linePos(deep);
    return {
      ok: false,
      problems: [{ offset: deep, line, column: col, message: `the YAML nests deeper than ${MAX_NESTING} levels, so it was not checked`, fix: 'flatten the structure; a workflow never needs this depth' }],
    };
  }
  const docs: Document.Parsed[] = [];
  try {
    for (const doc of new Composer({ uniqueKeys: false, strict: true, prettyErrors: false }).compose(tokens, true, text.length)) {
      docs.push(doc);
      if (docs.length > 1) break;
    }
  } catch (err) {
    return { ok: false, problems: [{ offset: 0, message: `the YAML could not be read: ${(err as Error).message}`, fix: 'fix the YAML syntax' }] };
  }
  const doc = docs[0];
  if (!doc) return { ok: false, problems: [{ offset: 0, message: 'the file holds no YAML document', fix: 'write the workflow (a mapping with on: and jobs:)' }] };
  const problems: SourceProblem[] = doc.errors.slice(0, 10).map((e) => ({
    offset: e.pos[0],
    message: `invalid YAML: ${e.message.split('\n')[0] ?? e.code}`,
    fix: 'fix the YAML syntax at this position',
  }));
  const second = docs[1];
  if (second) {
    problems.push({ offset: second.range[0], message: 'the file holds more than one YAML document; GitHub reads a workflow as one document', fix: 'remove the --- separator and the second document' });
  }
  const source = new WorkflowSource(text, doc, lines);
  for (const key of source.duplicateKeys.slice(0, 10)) {
    problems.push({ offset: source.offsetOf(key), message: `invalid YAML: the key "${String(key.value)}" appears twice in one mapping`, fix: 'remove or rename the repeated key; GitHub rejects a workflow that repeats one' });
  }
  problems.sort((a, b) => a.offset - b.offset);
  return problems.length ? { ok: false, problems, source } : { ok: true, source };
}

/** Offset of the first collection nested deeper than MAX_NESTING, or undefined. Iterative: the CST can be arbitrarily deep. */
function deepestOffset(tokens: CST.Token[]): number | undefined {
  const stack: Array<[CST.Token | null | undefined, number]> = tokens.map((t) => [t, 0]);
  while (stack.length) {
    const [token, depth] = stack.pop() as [CST.Token | null | undefined, number];
    if (!token) continue;
    if (depth > MAX_NESTING) return token.offset;
    if (token.type === 'document') stack.push([token.value, depth]);
    else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      for (const item of token.items) {
        stack.push([item.key, depth + 1]);
        stack.push([item.value, depth + 1]);
      }
    }
  }
  return undefined;
}

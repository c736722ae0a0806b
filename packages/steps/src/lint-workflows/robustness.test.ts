/**
 * Property tests: whatever the bytes, lint-workflows returns a well-formed report (or, for files
 * on disk, a coded StepError) and never throws anything else, hangs or points outside the file.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { tempDir } from '../../../../test/helpers/tmp.js';
import { StepError } from '../errors.js';
import { LINT_RULES, lintWorkflowFiles, lintWorkflowText, renderJson, renderSarif, renderText, type LintReport } from './index.js';
import { SHA_CHECKOUT } from './testing.js';

const WORDS = [
  'on',
  'jobs',
  'steps',
  'run',
  'uses',
  'with',
  'env',
  'permissions',
  'environment',
  'schedule',
  'release',
  'types',
  'published',
  'workflow_dispatch',
  'inputs',
  'pull_request_target',
  'id-token',
  'write',
  'write-all',
  'script',
  'ref',
  'NPM_TOKEN',
  'actions/checkout@v4',
  `actions/github-script@${SHA_CHECKOUT}`,
  'docker://alpine',
  './x',
  'npm publish',
  '${{ github.event.issue.title }}',
  '${{ inputs.x }}',
  '${{ env.T }}',
  '${{ secrets.NPM_TOKEN }}',
  'gh release create',
  '//r/:_authToken=x',
  'mcp-release publish',
];
const SYNTAX = [':', ': ', '- ', '\n', '\n  ', '  ', '[', ']', '{', '}', ',', '&a ', '*a', '&b ', '*b', '|', '>-', "'", '"', '#', '? ', '!!str ', '!!binary ', '%YAML 1.2\n', '---\n', '...\n', '<<: ', '\t', '\0', '\r', '\\', '\ud800', 'é', '\ufeff', '@', '`'];

const ruleSeverity = new Map<string, string>(LINT_RULES.map((r) => [r.id, r.severity]));

/** Lints, accepting only a report or a coded StepError. */
function lintOrCoded(input: string | Uint8Array): LintReport | undefined {
  try {
    return lintWorkflowText(input, 'fuzz.yml', { root: '/repo' });
  } catch (err) {
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).code).toMatch(/^LINT_[A-Z_]+$/);
    return undefined;
  }
}

/** The invariants every report keeps; `lines` bounds the line numbers. */
function checkReport(report: LintReport | undefined, lines: number): void {
  if (!report) return;
  expect(report.files).toEqual(['fuzz.yml']);
  for (const f of report.findings) {
    expect(ruleSeverity.get(f.ruleId)).toBe(f.severity);
    expect(f.file).toBe('fuzz.yml');
    expect(Number.isInteger(f.line) && f.line >= 1 && f.line <= lines).toBe(true);
    expect(Number.isInteger(f.column) && f.column >= 1).toBe(true);
    expect(f.message.length).toBeGreaterThan(0);
    expect(f.fix.length).toBeGreaterThan(0);
  }
  expect(report.summary).toEqual({
    files: 1,
    errors: report.findings.filter((f) => f.severity === 'error').length,
    warnings: report.findings.filter((f) => f.severity === 'warning').length,
  });
  expect(renderText(report).endsWith('\n')).toBe(true);
  expect(JSON.parse(renderJson(report)).findings).toHaveLength(report.findings.length);
  expect(JSON.parse(renderSarif(report)).runs[0].results).toHaveLength(report.findings.length);
}

const lineBound = (s: string): number => (s.match(/[\n\r]/g)?.length ?? 0) + 1;

const scalar = fc.oneof(fc.constantFrom(...WORDS), fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null));
const { node } = fc.letrec<{ node: unknown; map: Record<string, unknown>; seq: unknown[] }>((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, scalar, tie('map'), tie('seq')),
  map: fc.dictionary(fc.constantFrom(...WORDS), tie('node'), { maxKeys: 5 }),
  seq: fc.array(tie('node'), { maxLength: 4 }),
}));
const step = fc.record(
  { name: scalar, run: fc.oneof(scalar, fc.array(fc.constantFrom(...WORDS), { maxLength: 5 }).map((w) => w.join('\n'))), uses: scalar, with: node, env: node },
  { requiredKeys: [] },
);
const workflowish = fc.record(
  {
    on: node,
    permissions: node,
    env: node,
    jobs: fc.dictionary(fc.constantFrom('a', 'b', 'publish', 'on'), fc.record({ 'runs-on': scalar, permissions: node, environment: scalar, uses: scalar, steps: fc.array(step, { maxLength: 4 }) }, { requiredKeys: [] }), {
      maxKeys: 3,
    }),
  },
  { requiredKeys: ['jobs'] },
);
/** A YAML text from a generated value, with a few syntax tokens spliced in at random places. */
const mutatedYaml = fc.tuple(fc.oneof(node, workflowish), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...SYNTAX)), { maxLength: 3 })).map(([value, cuts]) => {
  let text = stringify(value, { lineWidth: 0 });
  for (const [at, token] of cuts) {
    const i = text.length ? at % text.length : 0;
    text = text.slice(0, i) + token + text.slice(i);
  }
  return text;
});

describe('lint-workflows robustness (property tests)', () => {
  it('garbage made of YAML syntax and workflow words', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...WORDS, ...SYNTAX), maxLength: 120 }), (text) => {
        checkReport(lintOrCoded(text), lineBound(text));
      }),
      { numRuns: 400 },
    );
  });

  it('generated workflow-shaped YAML, with and without spliced-in syntax, gives the same report twice', () => {
    fc.assert(
      fc.property(mutatedYaml, (text) => {
        const report = lintOrCoded(text);
        checkReport(report, lineBound(text));
        if (report) expect(renderJson(lintWorkflowText(text, 'fuzz.yml', { root: '/repo' }))).toBe(renderJson(report));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes (not UTF-8, BOMs, NULs)', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      fc.tuple(fc.constantFrom([0xff, 0xfe], [0xfe, 0xff], [0xef, 0xbb, 0xbf], [0, 0, 0xfe, 0xff], []), fc.uint8Array({ maxLength: 100 })).map(([bom, rest]) => Uint8Array.from([...bom, ...rest])),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        checkReport(lintOrCoded(b), b.filter((x) => x === 0x0a || x === 0x0d).length + 1);
      }),
      { numRuns: 300 },
    );
  });

  it('every template-injection finding points at its ${{ in the source, and each untrusted expression is found once', () => {
    const untrusted = ['github.event.issue.title', 'github.head_ref', "github.event['comment']['body']", 'github.event.commits[0].message', 'toJSON(github.event.pull_request)'];
    const trusted = ['github.sha', 'github.event.issue.number', "'github.event.issue.title'", 'runner.os', 'github.event.pull_request.head.sha'];
    const line = fc.oneof(
      fc.string({ unit: fc.constantFrom('a', 'b', ' ', '"', "'", '#', ':', '-', '\\', '|'), maxLength: 12 }),
      fc.tuple(fc.constantFrom(...untrusted, ...trusted), fc.constantFrom('', ' ', '  '), fc.constantFrom('echo "', 'echo ', 'x=', '')).map(([e, pad, before]) => `${before}\${{${pad}${e}${pad}}}`),
    );
    const scripts = fc.array(fc.array(line, { minLength: 1, maxLength: 6 }).map((l) => l.join('\n')), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(scripts, fc.boolean(), (runs, flow) => {
        const workflow = { on: 'issues', permissions: {}, jobs: { j: { 'runs-on': 'ubuntu-latest', steps: runs.map((run) => ({ run })) } } };
        const text = stringify(workflow, { lineWidth: 0, ...(flow ? { defaultStringType: 'QUOTE_DOUBLE' as const } : {}) });
        const findings = lintWorkflowText(text, 'fuzz.yml').findings;
        const expected = runs.join('\n').split('${{').slice(1).filter((rest) => untrusted.some((u) => rest.replace(/^\s+/, '').startsWith(u))).length;
        expect(findings.map((f) => f.ruleId)).toEqual(Array(expected).fill('MR001'));
        const lines = text.split('\n');
        for (const f of findings) {
          const at = lines[f.line - 1]?.slice(f.column - 1) ?? '';
          expect(at.startsWith('${{'), `${f.line}:${f.column} in\n${text}`).toBe(true);
          expect(f.message.startsWith(at.slice(0, at.indexOf('}}') + 2))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('hostile shapes that make naive patterns or YAML checks quadratic finish with the right report', () => {
    const KB256 = 256 * 1024;
    const head = 'on: issues\npermissions: {}\njobs:\n  j:\n    runs-on: x\n    steps:\n';
    const spaces = lintWorkflowText(`${head}      - run: echo \${{ github.event.issue.title ${' '.repeat(KB256)} }}\n`, 'fuzz.yml').findings;
    expect(spaces.map((f) => [f.ruleId, f.line, f.column])).toEqual([['MR001', 7, 19]]);
    expect(spaces[0]?.message.length).toBeLessThanOrEqual(1000);
    expect(lintWorkflowText(`${head}      - run: npm ${'-npm'.repeat(KB256 / 4)} x\n`, 'fuzz.yml').findings).toEqual([]);
    expect(lintWorkflowText(`${head}      - run: npm ${'-npm '.repeat(KB256 / 5)}x\n`, 'fuzz.yml').findings).toEqual([]);
    expect(lintWorkflowText(`${head}      - run: echo ${'//:'.repeat(KB256 / 3)}_authToken\n`, 'fuzz.yml').findings).toEqual([]);
    const keys = `on: push\njobs:\n${Array.from({ length: 20000 }, (_, i) => `  j${i}:\n    runs-on: x\n`).join('')}  j7:\n    runs-on: y\n`;
    expect(lintWorkflowText(keys, 'fuzz.yml').findings).toEqual([expect.objectContaining({ ruleId: 'MR000', line: 40003, column: 3, message: expect.stringContaining('"j7" appears twice') })]);
    const deep = lintWorkflowText(`on: push\njobs: ${'['.repeat(100000)}\n`, 'fuzz.yml').findings;
    expect(deep).toEqual([expect.objectContaining({ ruleId: 'MR000', line: 2, column: 71, message: expect.stringContaining('deeper than 64') })]);
  });

  it('garbage files on disk give a report or a coded error', async () => {
    const root = await tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutatedYaml.map((t) => Buffer.from(t)), fc.uint8Array({ maxLength: 200 })), async (content) => {
        const file = path.join(root, `f${n++}.yml`);
        await writeFile(file, content);
        try {
          const report = await lintWorkflowFiles([file], { root });
          expect(report.files).toEqual([path.basename(file)]);
        } catch (err) {
          expect(err).toBeInstanceOf(StepError);
        }
      }),
      { numRuns: 60 },
    );
  });
});

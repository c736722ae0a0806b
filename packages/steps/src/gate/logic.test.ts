import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import schema from '../../../../policies/schemas/golden-scores-predicate.schema.json' with { type: 'json' };
import { REPO_ROOT, SHARED_FIXTURES } from '../../../../test/helpers/tmp.js';
import { resolveBackends } from './backends.js';
import { buildGoldenStatement, GOLDEN_PREDICATE_TYPE, runGoldenGate } from './gate.js';
import { aggregate, judge, parity, placesPass, pythonRound, renderJsonReport, renderMarkdownReport, type CheckResult } from './logic.js';
import { parseCliUsage, pooledMean, type GateScorer } from './scorers.js';
import { loadGoldenTable, type GoldenCheck } from './table.js';

describe('pythonRound: Python round(x, places), half-even on the exact binary value', () => {
  // Expected values printed by CPython 3 for the same doubles.
  const cases: Array<[number, number, number]> = [
    [0.5, 0, 0],
    [-0.5, 0, -0],
    [1.5, 0, 2],
    [2.5, 0, 2],
    [-1.5, 0, -2],
    [0.25, 1, 0.2],
    [0.35, 1, 0.3],
    [0.125, 2, 0.12],
    [0.375, 2, 0.38],
    [0.005, 2, 0.01],
    [0.004999999999999999, 2, 0],
    [0.00005, 4, 0.0001],
    [-0.00005, 4, -0.0001],
    [-4.999999999999999e-5, 4, -0],
    [1e-320, 4, 0],
    [123.456789, 0, 123],
    [92.544713 - 92.52095888042386, 2, 0.02],
  ];
  it.each(cases)('round(%s, %s) == %s', (x, places, expected) => {
    expect(pythonRound(x, places)).toBe(expected);
  });

  it('passes exactly at half a unit of the last place when the tie rounds to the even 0, and fails just above', () => {
    expect(placesPass(0.5, 0, 0)).toBe(true); // round(0.5) == 0
    expect(placesPass(-0.5, 0, 0)).toBe(true);
    expect(placesPass(1.5, 1, 0)).toBe(true); // difference 0.5 exactly
    expect(placesPass(0.5000000000000001, 0, 0)).toBe(false);
    // 0.00005 is a little above the decimal half in binary: Python rounds it to 0.0001
    expect(placesPass(0.00005, 0, 4)).toBe(false);
    expect(placesPass(-0.00005, 0, 4)).toBe(false);
    expect(placesPass(4.999999999999999e-5, 0, 4)).toBe(true);
    expect(placesPass(-4.999999999999999e-5, 0, 4)).toBe(true);
    expect(placesPass(0.004999999999999999, 0, 2)).toBe(true);
    expect(placesPass(0.005, 0, 2)).toBe(false);
  });

  it('judges the real numbers of the README: p10_float_psnr passes at places 4, ffmpeg on 160x90 fails at places 2', () => {
    expect(placesPass(32.571452, 32.57143333333333, 4)).toBe(true);
    expect(placesPass(92.544713, 92.52095888042386, 2)).toBe(false);
    expect(placesPass(92.520903, 92.52095888042386, 2)).toBe(true);
    expect(placesPass(74.140307, 82.56422466666668, 4)).toBe(false);
    expect(placesPass(Number.NaN, 1, 4)).toBe(false);
    expect(() => pythonRound(1, -1)).toThrow(RangeError);
  });
});

describe('parity and aggregation', () => {
  it('compares a GPU value with the CPU at the parity places', () => {
    expect(parity('x', 'vmaf-cli', 'cuda', 82.564227, 82.564223, 4)).toMatchObject({ pass: true, places: 4 });
    const off = parity('x', 'vmaf-cli', 'cuda', 82.564227, 82.5645, 4);
    expect(off.pass).toBe(false);
    expect(off.difference).toBeCloseTo(0.000273, 9);
  });

  it('fails on a failing check, an error, a parity miss or a required backend that is not available', () => {
    const base = { check: 'a', scorer: 's', backend: 'cpu', metric: 'vmaf', golden: 10, places: 2 };
    const ok = judge(base, 10.004);
    const bad = judge({ ...base, check: 'b' }, 10.006);
    const na: CheckResult = { ...base, check: 'c', status: 'not-applicable', reason: 'no model' };
    expect(aggregate([ok, na], [], [], ['a', 'c'])).toMatchObject({ passed: true, summary: { passed: 1, notApplicable: 1, uncovered: ['c'] } });
    const failed = aggregate([ok, bad], [], [], ['a', 'b']);
    expect(failed.passed).toBe(false);
    expect(failed.failures).toEqual(['b [s/cpu]: golden 10, measured 10.006, difference +0.006 (places 2)']);
    expect(aggregate([ok], [parity('a', 's', 'cuda', 10, 10.1, 4)], [], ['a']).failures[0]).toMatch(/a \[s\] cuda vs cpu: cpu 10, cuda 10.1, difference \+0.1 \(parity places 4\)/);
    const missing = aggregate([ok], [], [{ backend: 'cuda', state: 'not-built', required: true, reason: 'advertised only', evidence: { recordedOption: null, linked: [], advertised: true } }], ['a']);
    expect(missing.failures).toEqual(['backend cuda is required by the policy but not-built: advertised only']);
    expect(aggregate([na], [], [], ['c']).failures).toEqual(['no golden was scored: every check was not applicable to the configured scorers']);
  });
});

/** A scorer that answers with what the real CLIs printed (cli-output/<build>/). */
function recordedScorer(build: string): GateScorer {
  const dir = path.join(SHARED_FIXTURES, 'cli-output', build);
  return {
    name: `recorded:${build}`,
    binary: dir,
    selectsBackend: false,
    applicable: () => undefined,
    async score(check: GoldenCheck) {
      const file = check.compute.kind === 'vmaf' ? `${check.id}.json` : `psnr_${check.pair.id}${check.compute.distortedIsReference ? '_refref' : ''}.json`;
      return pooledMean(await readFile(path.join(dir, file), 'utf8'), check.metric, file);
    },
  };
}

describe('the gate over the recorded outputs of the real CLIs', () => {
  it('passes every Netflix golden with both builds, and renders the reports', async () => {
    const tablePath = path.join(REPO_ROOT, 'policies/golden-scores.json');
    const { table, sha256 } = await loadGoldenTable(tablePath);
    const usage = parseCliUsage(await readFile(path.join(SHARED_FIXTURES, 'cli-output/lusoris-vmaf-3.0.0-cpu/usage.txt'), 'utf8'));
    const backends = resolveBackends({ required: ['cpu'], optional: ['cuda', 'vulkan'] }, { usage, linked: [] });
    const report = await runGoldenGate({
      table,
      tablePath: 'policies/golden-scores.json',
      tableSha256: sha256,
      fixturesDir: SHARED_FIXTURES,
      scorers: [recordedScorer('netflix-vmaf-3.2.0'), recordedScorer('lusoris-vmaf-3.0.0-cpu')],
      backends,
      parityPlaces: 4,
    });
    expect(report.failures).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.summary).toMatchObject({ total: 2 * table.goldens.length, passed: 2 * table.goldens.length, failed: 0 });
    expect(report.backends.map((b) => [b.backend, b.state])).toEqual([
      ['cpu', 'available'],
      ['cuda', 'not-built'],
      ['vulkan', 'not-built'],
    ]);

    const md = renderMarkdownReport(report);
    expect(md).toContain('## Golden-score gate: PASSED');
    expect(md).toContain('| check | backend | golden | measured | difference | places | pass |');
    expect(md).toContain('| p10_float_psnr | cpu | 32.571433333 | 32.571452 | +0.000018667 | 4 | yes |');
    expect(md).toContain('| q160x90_v061 | cpu | 92.52095888 | 92.520875 | -0.00008388 | 2 | yes |');
    expect(md).toMatch(/\| cuda \| not-built \| no \| advertised in the usage text only: not built/);
    const json = JSON.parse(renderJsonReport(report));
    expect(json.results.find((r: CheckResult) => r.check === 'p10_v061' && r.scorer === 'recorded:netflix-vmaf-3.2.0')).toMatchObject({ golden: 82.56422466666668, measured: 82.564227, status: 'pass' });

    const statement = buildGoldenStatement(report, [{ name: 'vmaf-linux-x64', sha256: 'a'.repeat(64) }]);
    expect(statement).toMatchObject({ _type: 'https://in-toto.io/Statement/v1', predicateType: GOLDEN_PREDICATE_TYPE, subject: [{ name: 'vmaf-linux-x64', digest: { sha256: 'a'.repeat(64) } }] });
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    expect(validate(statement.predicate), JSON.stringify(validate.errors)).toBe(true);
    expect(() => buildGoldenStatement(report, [])).toThrow(/no subjects/);
  });

  it('renders a failing recorded value with its golden, measured value and difference', async () => {
    const { table, sha256 } = await loadGoldenTable(path.join(REPO_ROOT, 'policies/golden-scores.json'));
    const drifting: GateScorer = { ...recordedScorer('netflix-vmaf-3.2.0'), name: 'drift', score: async (c) => (c.id === 'q160x90_v061' ? 92.544713 : c.expected) };
    const report = await runGoldenGate({ table, tablePath: 'policies/golden-scores.json', tableSha256: sha256, fixturesDir: SHARED_FIXTURES, scorers: [drifting], backends: [], parityPlaces: 4, select: { ids: ['q160x90_v061', 'p10_v061'] } });
    expect(report.passed).toBe(false);
    expect(report.failures).toEqual(['q160x90_v061 [drift/cpu]: golden 92.52095888, measured 92.544713, difference +0.02375412 (places 2)']);
    expect(renderMarkdownReport(report)).toContain('| q160x90_v061 | cpu | 92.52095888 | 92.544713 | +0.02375412 | 2 | **NO** |');
  });
});

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, SHARED_FIXTURES } from '../../../../test/helpers/tmp.js';
import { DEFAULT_GOLDEN_TABLE, generateGoldenTableFromFixtures, loadGoldenTable, modelOptionsOf, renderGoldenTable } from './table.js';

const TABLE = path.join(REPO_ROOT, DEFAULT_GOLDEN_TABLE);

describe('policies/golden-scores.json', () => {
  it('is exactly what the generator makes from the fixture folder (GATE_WRITE_GOLDEN_TABLE=1 rewrites it)', async () => {
    const generated = renderGoldenTable(await generateGoldenTableFromFixtures(SHARED_FIXTURES));
    if (process.env.GATE_WRITE_GOLDEN_TABLE === '1') await writeFile(TABLE, generated);
    expect(await readFile(TABLE, 'utf8')).toBe(generated);
  });

  it('holds only Netflix-asserted checks in goldens, and the rest as labelled regression baselines', async () => {
    const { table } = await loadGoldenTable(TABLE);
    const golden = JSON.parse(await readFile(path.join(SHARED_FIXTURES, 'golden.json'), 'utf8')) as {
      pairs: Array<{ checks: Array<{ id: string; netflix_golden: unknown }>; psnr_checks: Array<{ id: string; netflix_golden: unknown }> }>;
    };
    const all = golden.pairs.flatMap((p) => [...p.checks, ...p.psnr_checks]);
    const asserted = all.filter((c) => c.netflix_golden).map((c) => c.id);
    expect(table.goldens.map((g) => g.id).sort()).toEqual(asserted.sort());
    expect(table.regressionBaselines.checks.map((c) => c.id).sort()).toEqual(all.filter((c) => !c.netflix_golden).map((c) => c.id).sort());
    expect(table.regressionBaselines.note).toMatch(/NOT Netflix goldens/);
    expect(table.provenance.note).toContain('e3ab3775a8ce9ff76dde8988c63cf59b0b12f019');
    expect(table.provenance.note).toContain('f85a853692a8c730d0270cd733c8bb30b5b93b7c');

    const p10 = table.goldens.find((g) => g.id === 'p10_v061');
    expect(p10).toMatchObject({
      metric: 'vmaf',
      expected: 82.56422466666668,
      places: 4,
      compute: { kind: 'vmaf', modelArg: 'path=model/vmaf_v0.6.1.json:name=vmaf', modelOptions: [], distortedIsReference: false },
      source: { repository: 'Netflix/vmaf', file: 'python/test/vmafexec_test.py', line: 449, test: 'VmafexecQualityRunnerTest.test_run_vmafexec_runner_yuv420p10le_b' },
      pair: { width: 576, height: 324, pixelFormat: 'yuv420p10le', chroma: '420', bitDepth: 10, frames: 3 },
    });
    expect(table.goldens.find((g) => g.id === 'p12_psnr_cb_refref')).toMatchObject({ metric: 'psnr_cb', compute: { kind: 'feature', featureArg: 'psnr', distortedIsReference: true }, expected: 84 });
    expect(table.goldens.find((g) => g.id === 'q160x90_v061')).toMatchObject({ places: 2 });
    expect(Object.keys(table.models)).toContain('model/libvmaf1/vmaf_v0.6.1.pkl.model');
  });

  it('splits model options off the --model argument', () => {
    expect(modelOptionsOf('path=model/vmaf_v0.6.1neg.json:disable_clip:adm.adm_enhn_gain_limit=1.2:name=vmaf')).toEqual(['disable_clip', 'adm.adm_enhn_gain_limit=1.2']);
  });
});

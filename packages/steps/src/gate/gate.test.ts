import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseContext } from '../../../../test/helpers/context.js';
import { buildFixtureCli } from '../../../../test/helpers/native-cli.js';
import { caught, REPO_ROOT, SHARED_FIXTURES, tempDir } from '../../../../test/helpers/tmp.js';
import { createGateGoldenStep, GATE_REPORT_JSON, GATE_REPORT_MD, type GoldenGatePolicy } from './gate.js';
import type { GateReport } from './logic.js';

const FFMPEG = path.join(REPO_ROOT, 'node_modules/@ffmpeg-installer/linux-x64/ffmpeg');
const PSNR_METRICS = ['psnr_y', 'psnr_cb', 'psnr_cr', 'float_psnr'];

let work: string;
let fixtureCli: string;
let standIn: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gate-golden-test-'));
  fixtureCli = buildFixtureCli(work);
  // The lusoris fork's behaviour, on the fixture CLI: its usage text for --help (exit 1), and
  // CPU scores whatever --backend says.
  standIn = path.join(work, 'fork-vmaf');
  writeFileSync(
    standIn,
    `#!${process.execPath}
const { readFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const args = process.argv.slice(2);
if (args.includes('--help')) { process.stderr.write(readFileSync(${JSON.stringify(path.join(SHARED_FIXTURES, 'cli-output/lusoris-vmaf-3.0.0-cpu/usage.txt'))}, 'utf8')); process.exit(1); }
const i = args.indexOf('--backend');
if (i >= 0) args.splice(i, 2);
const r = spawnSync(${JSON.stringify(fixtureCli)}, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
`,
  );
  chmodSync(standIn, 0o755);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function runGate(policy: GoldenGatePolicy, options: { vmafBin?: string } = {}, dir?: string) {
  const ctx = await releaseContext(dir ?? (await tempDir()), { ...(options.vmafBin ? { vmafBin: options.vmafBin } : {}) }, { repoRoot: REPO_ROOT });
  const step = createGateGoldenStep({ fixtures: SHARED_FIXTURES, policy });
  return { ctx, run: () => step.run(ctx) };
}

async function readReport(ctx: { releaseDir: string }): Promise<GateReport> {
  return JSON.parse(await readFile(path.join(ctx.releaseDir, GATE_REPORT_JSON), 'utf8')) as GateReport;
}

describe('gate-golden with the native fixture CLI', () => {
  it("passes every Netflix PSNR golden, and marks VMAF checks not applicable to the PSNR-only CLI", async () => {
    const { ctx, run } = await runGate({}, { vmafBin: fixtureCli });
    const outcome = await run();
    const report = await readReport(ctx);
    const table = JSON.parse(readFileSync(path.join(REPO_ROOT, 'policies/golden-scores.json'), 'utf8')) as { goldens: Array<{ id: string; metric: string }> };
    const psnr = table.goldens.filter((g) => PSNR_METRICS.includes(g.metric)).map((g) => g.id);
    expect(psnr.length).toBe(38);
    const scored = report.results.filter((r) => r.status === 'pass').map((r) => r.check);
    expect(scored.sort()).toEqual([...psnr].sort());
    expect(report.results.filter((r) => r.status === 'fail' || r.status === 'error')).toEqual([]);
    const vmaf = report.results.filter((r) => r.metric === 'vmaf');
    expect(vmaf.length).toBeGreaterThan(0);
    for (const r of vmaf) expect(r).toMatchObject({ status: 'not-applicable', reason: expect.stringMatching(/no --model option/) });
    expect(report.results.find((r) => r.check === 'p10_float_psnr')).toMatchObject({ measured: 32.571452, golden: 32.57143333333333, places: 4, status: 'pass' });
    expect(report.passed).toBe(true);
    expect(outcome?.notes?.[0]).toBe(`38 golden check(s) passed, ${vmaf.length} not applicable, 0 GPU parity check(s)`);
    expect(String(outcome?.data?.markdown)).toContain('| p12_psnr_cr_refref | cpu | 84 | 84 | +0 | 4 | yes |');
    expect(await readFile(path.join(ctx.releaseDir, GATE_REPORT_MD), 'utf8')).toBe(outcome?.data?.markdown);
    expect(ctx.manifest.artifacts.filter((a) => a.kind === 'gate-report').map((a) => a.path)).toEqual([GATE_REPORT_JSON, GATE_REPORT_MD]);
  });

  it('is skipped without a gates.golden section or caller defaults', async () => {
    const ctx = await releaseContext(await tempDir(), {}, { repoRoot: REPO_ROOT });
    expect(await createGateGoldenStep({ fixtures: SHARED_FIXTURES }).skip?.(ctx)).toEqual({ skipped: true, reason: 'no golden gate configured (gates.golden in the policy)' });
  });
});

describe('gate-golden with a drifting scorer: ffmpeg 4.1 (libvmaf 1.3.7)', () => {
  it('fails the 8-bit 160x90 golden at places 2 and the native 10-bit src01 golden, with the numbers', async () => {
    const { ctx, run } = await runGate({ scorers: [{ kind: 'ffmpeg', binary: FFMPEG }], select: { ids: ['q160x90_v061', 'p10_v061', 'p10_psnr_cb', 'akiyo_v061_noclip'] } });
    const err = await caught(run);
    expect(err.code).toBe('GATE_GOLDEN_FAILED');
    expect(err.message).toMatch(/^2 golden check\(s\) failed, e\.g\. p10_v061 \[ffmpeg\/cpu\]: golden 82\.564224667, measured 74\.1403\d*, difference -8\.42\d* at places 4$/);
    expect(err.details).toContainEqual(expect.stringMatching(/^q160x90_v061 \[ffmpeg\/cpu\]: golden 92\.52095888, measured 92\.5447\d*, difference \+0\.0237\d* \(places 2\)$/));
    expect(err.hint).toMatch(/Fix the scorer build/);
    const report = await readReport(ctx);
    const q = report.results.find((r) => r.check === 'q160x90_v061');
    expect(q?.measured).toBeCloseTo(92.544713, 5);
    expect(report.results.find((r) => r.check === 'p10_v061')?.measured).toBeCloseTo(74.140307, 5);
    expect(report.results.find((r) => r.check === 'p10_psnr_cb')).toMatchObject({ status: 'not-applicable', reason: expect.stringMatching(/computes VMAF only/) });
    expect(report.results.find((r) => r.check === 'akiyo_v061_noclip')).toMatchObject({ status: 'not-applicable', reason: expect.stringMatching(/no model options \(disable_clip\)/) });
    expect(await readFile(path.join(ctx.releaseDir, GATE_REPORT_MD), 'utf8')).toMatch(/\| q160x90_v061 \| cpu \| 92\.52095888 \| 92\.5447\d* \| \+0\.0237\d* \| 2 \| \*\*NO\*\* \|/);
  });
});

describe('gate-golden fixture integrity', () => {
  it('stops with a configuration error when a fixture file is not the one the table names', async () => {
    const dir = await tempDir();
    const fixtures = path.join(dir, 'fixtures');
    mkdirSync(path.join(fixtures, 'yuv'), { recursive: true });
    symlinkSync(path.join(SHARED_FIXTURES, 'model'), path.join(fixtures, 'model'));
    for (const f of readdirSync(path.join(SHARED_FIXTURES, 'yuv'))) symlinkSync(path.join(SHARED_FIXTURES, 'yuv', f), path.join(fixtures, 'yuv', f));
    const victim = path.join(fixtures, 'yuv', 'src01_hrc01_576x324.yuv420p10le.yuv');
    rmSync(victim);
    copyFileSync(path.join(SHARED_FIXTURES, 'yuv', 'src01_hrc01_576x324.yuv420p10le.yuv'), victim);
    const bytes = readFileSync(victim);
    bytes[1000] = (bytes[1000] as number) ^ 4;
    writeFileSync(victim, bytes);
    const { ctx, run } = await runGate({ fixtures, select: { metrics: PSNR_METRICS } }, { vmafBin: fixtureCli }, dir);
    const err = await caught(run);
    expect(err.code).toBe('GATE_FIXTURE_MISMATCH');
    expect(err.message).toMatch(/1 fixture file\(s\) in .* are not the ones the golden table was made for: yuv\/src01_hrc01_576x324\.yuv420p10le\.yuv: sha256 [0-9a-f]{64} but the table expects a748f140/);
    expect(err.hint).toMatch(/configuration error, not score drift/);
    expect(ctx.manifest.artifacts.some((a) => a.kind === 'gate-report')).toBe(false);
  });
});

describe('gate-golden backends', () => {
  it('reports a backend the usage text advertises but nobody built as "not built" and never runs it', async () => {
    const { ctx, run } = await runGate({ select: { metrics: PSNR_METRICS }, backends: { required: ['cpu'], optional: ['cuda', 'vulkan'] } }, { vmafBin: standIn });
    const outcome = await run();
    const report = await readReport(ctx);
    expect(report.backends.map((b) => [b.backend, b.state])).toEqual([
      ['cpu', 'available'],
      ['cuda', 'not-built'],
      ['vulkan', 'not-built'],
    ]);
    expect(report.backends[1]?.reason).toBe('advertised in the usage text only: not built (no recorded meson option, no library linked)');
    expect(new Set(report.results.map((r) => r.backend))).toEqual(new Set(['cpu']));
    expect(report.parity).toEqual([]);
    expect(report.passed).toBe(true);
    expect(outcome?.notes).toContain('cuda not-built: advertised in the usage text only: not built (no recorded meson option, no library linked)');
  });

  it('fails the gate when a required backend is missing', async () => {
    const { ctx, run } = await runGate({ select: { metrics: PSNR_METRICS }, backends: { required: ['cpu', 'cuda'] } }, { vmafBin: standIn });
    const err = await caught(run);
    expect(err.code).toBe('GATE_BACKEND_MISSING');
    expect(err.message).toBe('the golden gate needs backend(s) cuda (not-built: advertised in the usage text only: not built (no recorded meson option, no library linked))');
    expect(err.hint).toMatch(/-Denable_cuda=true/);
    expect((await readReport(ctx)).summary.failed).toBe(0);
  });

  it('scores a backend the build recorded as enabled, and compares it with the CPU at the parity places', async () => {
    const dir = await tempDir();
    const { ctx, run } = await runGate({ select: { ids: ['p10_psnr_y', 'sparks_float_psnr'] }, backends: { required: ['cpu', 'cuda'], optional: ['vulkan'] }, parityPlaces: 4 }, {}, dir);
    mkdirSync(path.join(ctx.releaseDir, 'bin'));
    copyFileSync(standIn, path.join(ctx.releaseDir, 'bin', 'vmaf'));
    chmodSync(path.join(ctx.releaseDir, 'bin', 'vmaf'), 0o755);
    const cli = await ctx.addArtifact('bin/vmaf', 'native-cli', 'linux-x64');
    ctx.manifest.native = { 'linux-x64': { project: { name: 'libvmaf', version: '3.0.0' }, source: { commit: null, fingerprint: 'f' }, buildtype: 'release', options: { enable_cuda: true, enable_vulkan: 'disabled' } } };
    await run();
    const report = await readReport(ctx);
    expect(report.backends.map((b) => [b.backend, b.state, b.reason])).toEqual([
      ['cpu', 'available', 'the vmaf CLI scores on the CPU'],
      ['cuda', 'available', 'recorded meson option enable_cuda=true'],
      ['vulkan', 'not-built', 'advertised in the usage text only: not built (recorded meson option enable_vulkan=disabled, no library linked)'],
    ]);
    expect(report.results.map((r) => [r.check, r.backend, r.status])).toEqual([
      ['p10_psnr_y', 'cpu', 'pass'],
      ['p10_psnr_y', 'cuda', 'pass'],
      ['sparks_float_psnr', 'cpu', 'pass'],
      ['sparks_float_psnr', 'cuda', 'pass'],
    ]);
    expect(report.parity).toEqual([
      { check: 'p10_psnr_y', scorer: 'vmaf-cli', backend: 'cuda', cpu: 32.571452, gpu: 32.571452, difference: 0, places: 4, pass: true },
      { check: 'sparks_float_psnr', scorer: 'vmaf-cli', backend: 'cuda', cpu: 48.816214, gpu: 48.816214, difference: 0, places: 4, pass: true },
    ]);
    expect(report.subjects).toEqual([{ name: 'bin/vmaf', sha256: cli.sha256 }]);
  });
});

describe('gate-golden through the packed MCP server', () => {
  let tarball: string;
  beforeAll(() => {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: path.join(REPO_ROOT, 'packages/vmaf-mcp'), encoding: 'utf8' });
    tarball = path.join(work, JSON.parse(out.slice(out.lastIndexOf('\n[') + 1))[0].filename);
  });

  it('gives the Netflix PSNR goldens from the published bytes', async () => {
    const dir = await tempDir();
    const { ctx, run } = await runGate({ scorers: [{ kind: 'mcp', package: 'vmaf-mcp' }], select: { metrics: PSNR_METRICS } }, { vmafBin: fixtureCli }, dir);
    copyFileSync(tarball, path.join(ctx.releaseDir, path.basename(tarball)));
    const artifact = await ctx.addArtifact(path.basename(tarball), 'npm-tarball', 'any', { name: 'vmaf-mcp' });
    await run();
    const report = await readReport(ctx);
    expect(report.scorers[0]).toMatchObject({ name: 'mcp', binary: path.basename(tarball), version: expect.stringMatching(/^vmaf-mcp@/) });
    expect(report.results.length).toBe(38);
    expect(report.results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(report.subjects).toEqual([{ name: artifact.path, sha256: artifact.sha256 }]);
  });
});

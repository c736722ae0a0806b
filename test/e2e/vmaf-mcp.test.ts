import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtureCli } from '../helpers/native-cli.js';
import { REPO_ROOT, SHARED_FIXTURES } from '../helpers/tmp.js';

const BIN = path.join(REPO_ROOT, 'packages/vmaf-mcp/dist/vmaf-mcp.mjs');
const FFMPEG = path.join(REPO_ROOT, 'node_modules/@ffmpeg-installer/linux-x64/ffmpeg');
const PKL = path.join(SHARED_FIXTURES, 'model/libvmaf1/vmaf_v0.6.1.pkl');
const golden = JSON.parse(readFileSync(path.join(SHARED_FIXTURES, 'golden.json'), 'utf8')) as { pairs: Array<{ id: string; ffmpeg_libvmaf1: { native: { vmaf_mean: number } } }> };
const ffmpegMean = (id: string): number => (golden.pairs.find((p) => p.id === id) as (typeof golden.pairs)[number]).ffmpeg_libvmaf1.native.vmaf_mean;
const yuv = (f: string): string => path.join(SHARED_FIXTURES, 'yuv', f);

const p10 = { reference: yuv('src01_hrc00_576x324.yuv420p10le.yuv'), distorted: yuv('src01_hrc01_576x324.yuv420p10le.yuv'), width: 576, height: 324, bit_depth: 10 };
const q160 = {
  reference: yuv('ref_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv'),
  distorted: yuv('dis_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv'),
  width: 160,
  height: 90,
};
const hall = { reference: yuv('hall_cif_frm_0_frm_0.yuv'), distorted: yuv('hall_plr10_3693_frm_0_frm_0.yuv'), width: 352, height: 288 };

type Result = { isError?: boolean; content: Array<{ type: string; text?: string }>; structuredContent?: Record<string, unknown> };

let work: string;
let fixtureCli: string;
const fakes: Record<string, string> = {};
const clients: Client[] = [];

async function connect(env: Record<string, string>, args: string[] = [SHARED_FIXTURES, '--models', path.join(SHARED_FIXTURES, 'model')]): Promise<Client> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, ...args], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stderr: 'pipe' });
  const client = new Client({ name: 'mcp-release-tests', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<Result> {
  return (await client.callTool({ name, arguments: args })) as Result;
}

const text = (r: Result): string => r.content.map((c) => c.text ?? '').join('\n');

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'vmaf-mcp-e2e-'));
  fixtureCli = buildFixtureCli(work);
  const usage = path.join(SHARED_FIXTURES, 'cli-output/lusoris-vmaf-3.0.0-cpu/usage.txt');
  const bodies: Record<string, string> = {
    // Like the fork built CPU-only: advertises every backend, accepts --backend, scores on the CPU.
    fork: `#!${process.execPath}\nconst { spawnSync } = require('node:child_process');\nconst a = process.argv.slice(2);\nif (a.includes('--help')) { process.stderr.write(require('node:fs').readFileSync(${JSON.stringify(usage)}, 'utf8')); process.exit(1); }\nconst i = a.indexOf('--backend'); if (i >= 0) a.splice(i, 2);\nprocess.exit(spawnSync(${JSON.stringify(fixtureCli)}, a, { stdio: 'inherit' }).status ?? 1);\n`,
    nopooled: `#!${process.execPath}\nconst a = process.argv.slice(2);\nif (a.includes('--help')) process.exit(1);\nrequire('node:fs').writeFileSync(a[a.indexOf('-o') + 1], '{"version":"9.9.9","frames":[]}');\n`,
    failing: '#!/bin/sh\necho "libvmaf ERROR: could not initialize feature extractor" >&2\nexit 255\n',
    hanging: '#!/bin/sh\nexec sleep 30\n',
  };
  for (const [name, body] of Object.entries(bodies)) {
    const file = path.join(work, `${name}.cjs`);
    writeFileSync(file, body);
    chmodSync(file, 0o755);
    fakes[name] = file;
  }
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

describe('vmaf-mcp over stdio, with the MCP SDK client', () => {
  it('answers initialize with its package name and version, and lists four tools with schemas', async () => {
    const client = await connect({});
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'packages/vmaf-mcp/package.json'), 'utf8'));
    expect(client.getServerVersion()).toMatchObject({ name: pkg.name, version: pkg.version });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['list_backends', 'list_models', 'vmaf_benchmark', 'vmaf_score']);
    for (const t of tools) {
      expect(t.inputSchema.type).toBe('object');
      expect(t.outputSchema?.type).toBe('object');
    }
  });

  it('scores with ffmpeg libvmaf 1.x (8-bit pairs) and matches the recorded ffmpeg values', async () => {
    const client = await connect({ FFMPEG_BIN: FFMPEG });
    for (const [id, p] of [['src01_q_160x90_yuv420p', q160], ['hall_cif_plr10_352x288_yuv420p', hall]] as const) {
      const r = await call(client, 'vmaf_score', { ...p, scorer: 'ffmpeg', model: PKL, features: ['psnr'] });
      expect(r.isError, text(r)).toBeFalsy();
      const s = r.structuredContent as { metrics: Record<string, { mean: number }>; backend: { ran: string }; scorer_version: string; frames: number };
      expect(s.metrics.vmaf?.mean).toBeCloseTo(ffmpegMean(id), 3);
      expect(s.metrics.psnr?.mean).toBeGreaterThan(20);
      expect(s.backend.ran).toBe('cpu');
      expect(s.scorer_version).toBe('1.3.7');
    }
    // a model given by name from the model folder, per-frame scores, a frame limit
    const r = await call(client, 'vmaf_score', { ...q160, scorer: 'ffmpeg', model: 'vmaf_v0.6.1', frame_limit: 5, per_frame: true });
    expect(r.isError, text(r)).toBeFalsy();
    expect((r.structuredContent as { per_frame: unknown[]; frames: number }).per_frame).toHaveLength(5);
  });

  it('scores with a vmaf-compatible CLI (the native fixture) and reports PSNR as the vmaf CLI does', async () => {
    const client = await connect({ VMAF_BIN: fixtureCli });
    const r = await call(client, 'vmaf_score', { ...p10, model: 'none', features: ['psnr', 'float_psnr'] });
    expect(r.isError, text(r)).toBeFalsy();
    const s = r.structuredContent as { metrics: Record<string, { mean: number; min: number; max: number }>; frames: number; model: string };
    expect(s.metrics.psnr_y).toEqual({ mean: 32.571452, min: 31.019332, max: 34.786288, harmonic_mean: 32.4964 });
    expect(s.metrics.float_psnr?.mean).toBe(32.571452);
    expect(s.frames).toBe(3);

    const backends = await call(client, 'list_backends', {});
    const list = (backends.structuredContent as { backends: Array<{ backend: string; available: boolean }> }).backends;
    expect(list.filter((b) => b.available).map((b) => b.backend)).toEqual(['cpu']);

    const bench = await call(client, 'vmaf_benchmark', { ...p10, model: 'none', features: ['psnr'], repeat: 2 });
    expect(bench.isError, text(bench)).toBeFalsy();
    const b = bench.structuredContent as { runs: Array<{ fps: number }>; median_fps: number };
    expect(b.runs).toHaveLength(2);
    expect(b.median_fps).toBeGreaterThan(0);
  });

  it('never reports a backend as available on the usage text alone (the fork, built CPU-only)', async () => {
    const client = await connect({ VMAF_BIN: fakes.fork as string });
    const r = await call(client, 'list_backends', {});
    const list = (r.structuredContent as { backends: Array<{ backend: string; available: boolean; evidence: { advertised: boolean }; reason: string }> }).backends;
    const cuda = list.find((b) => b.backend === 'cuda');
    expect(cuda).toMatchObject({ available: false, evidence: { advertised: true, linked: [], observed: null } });
    expect(cuda?.reason).toMatch(/advertised in the usage text only: not built/);
    expect(list.find((b) => b.backend === 'cpu')?.available).toBe(true);

    const refused = await call(client, 'vmaf_score', { ...p10, model: 'none', features: ['psnr'], backend: 'cuda' });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/BACKEND_NOT_AVAILABLE: backend cuda is not available/);
  });

  it('lists models: the model folders, and only built-in versions a probe proves', async () => {
    const client = await connect({ VMAF_BIN: fixtureCli });
    const r = await call(client, 'list_models', {});
    const s = r.structuredContent as { builtin: string[]; files: Array<{ name: string; format: string }> };
    expect(s.builtin).toEqual([]); // the fixture CLI has no --model option
    expect(s.files.map((f) => `${f.name}:${f.format}`)).toEqual(expect.arrayContaining(['vmaf_v0.6.1:libvmaf-json', 'vmaf_float_b_v0.6.3:libvmaf-json', 'vmaf_v0.6.1:libvmaf1-pkl']));
  });
});

describe('vmaf-mcp refuses bad requests with MCP error results, and keeps serving', () => {
  it('refuses paths outside the allowlist, also through a symlink, and names the variable to set', async () => {
    const root = path.join(work, 'allowed');
    mkdirSync(root, { recursive: true });
    symlinkSync(q160.reference, path.join(root, 'sneaky.yuv'));
    const client = await connect({ FFMPEG_BIN: FFMPEG }, [root]);
    const direct = await call(client, 'vmaf_score', { ...q160, scorer: 'ffmpeg', model: PKL });
    expect(direct.isError).toBe(true);
    expect(text(direct)).toMatch(/PATH_NOT_ALLOWED: reference file .* is outside the folders this server may read/);
    expect(text(direct)).toMatch(/VMAF_MCP_ALLOW/);
    const viaLink = await call(client, 'vmaf_score', { ...q160, reference: 'sneaky.yuv', scorer: 'ffmpeg', model: PKL });
    expect(text(viaLink)).toMatch(/sneaky\.yuv is outside .*it resolves to/);
    const dotdot = await call(client, 'vmaf_score', { ...q160, reference: path.relative(root, q160.reference), scorer: 'ffmpeg', model: PKL });
    expect(text(dotdot)).toMatch(/PATH_NOT_ALLOWED/);

    const extended = await connect({ FFMPEG_BIN: FFMPEG, VMAF_MCP_ALLOW: SHARED_FIXTURES }, [root]);
    const allowed = await call(extended, 'vmaf_score', { ...q160, scorer: 'ffmpeg', model: PKL, frame_limit: 2 });
    expect(allowed.isError, text(allowed)).toBeFalsy();
  });

  it('reports a missing binary, a failing binary, a hung binary, and output with no pooled metrics', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ VMAF_BIN: path.join(work, 'no-such-vmaf') }, /BINARY_NOT_FOUND: VMAF_BIN=.* is not an executable file\nfix: set VMAF_BIN/],
      [{ VMAF_BIN: fakes.failing as string }, /SCORER_FAILED: .* exited with status 255: libvmaf ERROR: could not initialize feature extractor/],
      [{ VMAF_BIN: fakes.hanging as string, VMAF_MCP_TIMEOUT_MS: '300' }, /SCORER_TIMEOUT: vmaf did not finish within 0 s/],
      [{ VMAF_BIN: fakes.nopooled as string }, /VMAF_OUTPUT_NO_POOLED: .* has no pooled_metrics/],
    ];
    for (const [env, expected] of cases) {
      const client = await connect(env);
      const r = await call(client, 'vmaf_score', { ...q160, model: 'none', features: ['psnr'] });
      expect(r.isError, JSON.stringify(env)).toBe(true);
      expect(text(r)).toMatch(expected);
      expect((await client.listTools()).tools).toHaveLength(4); // still serving
    }
  });

  it('refuses a geometry that does not match the file, and an unknown model', async () => {
    const client = await connect({ FFMPEG_BIN: FFMPEG, VMAF_BIN: fixtureCli });
    const geometry = await call(client, 'vmaf_score', { ...q160, width: 161, scorer: 'ffmpeg', model: PKL });
    expect(text(geometry)).toMatch(/GEOMETRY_MISMATCH: the reference file is 1036800 bytes, which is not a whole number of 161x90 yuv420p 8-bit frames \(21690 bytes each\)/);
    const unknown = await call(client, 'vmaf_score', { ...q160, scorer: 'ffmpeg', model: 'vmaf_v9.9' });
    expect(text(unknown)).toMatch(/UNKNOWN_MODEL: unknown model "vmaf_v9.9" for the ffmpeg scorer\nfix: use one of: .*vmaf_v0.6.1/);
    const wrongFormat = await call(client, 'vmaf_score', { ...q160, model: PKL });
    expect(text(wrongFormat)).toMatch(/MODEL_FORMAT: .* libvmaf 1.x .pkl model; the vmaf CLI .* reads .json models/);
    const missingFile = await call(client, 'vmaf_score', { ...q160, reference: 'yuv/nope.yuv', scorer: 'ffmpeg', model: PKL });
    expect(text(missingFile)).toMatch(/FILE_NOT_FOUND/);
  });
});

describe('vmaf-mcp driven by a second, independent client (the MCP inspector CLI)', () => {
  const inspector = path.join(REPO_ROOT, 'node_modules/.bin/mcp-inspector');
  const run = async (args: string[]): Promise<{ code: number | null; json: Record<string, unknown> }> => {
    const { spawn } = await import('node:child_process');
    return new Promise((resolve, reject) => {
      const child = spawn(inspector, ['--cli', ...args], { env: { ...process.env, HOME: work }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, json: JSON.parse(out.slice(0, out.lastIndexOf('\n}') + 2)) as Record<string, unknown> }));
    });
  };

  it('lists the tools and scores a pair through the inspector', async () => {
    const list = await run([process.execPath, BIN, SHARED_FIXTURES, '--method', 'tools/list']);
    expect(list.code).toBe(0);
    expect((list.json.tools as Array<{ name: string }>).map((t) => t.name).sort()).toEqual(['list_backends', 'list_models', 'vmaf_benchmark', 'vmaf_score']);

    const scored = await run([
      '-e', `FFMPEG_BIN=${FFMPEG}`,
      process.execPath, BIN, SHARED_FIXTURES,
      '--method', 'tools/call', '--tool-name', 'vmaf_score',
      '--tool-arg', `reference=${q160.reference}`, `distorted=${q160.distorted}`, 'width=160', 'height=90', 'scorer=ffmpeg', `model=${PKL}`,
    ]);
    expect(scored.code).toBe(0);
    const s = scored.json.structuredContent as { metrics: { vmaf: { mean: number } } };
    expect(s.metrics.vmaf.mean).toBeCloseTo(ffmpegMean('src01_q_160x90_yuv420p'), 3);
  });
});

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { buildFixtureCli } from '../helpers/native-cli.js';
import { REPO_ROOT } from '../helpers/tmp.js';

let work: string;
let fixtureCli: string;
let realTarball: string;

/** Packs a small MCP server package that misbehaves in one way. */
function fakeServer(name: string, opts: { reportVersion: string; tools: string[] }): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  const sdk = JSON.parse(execFileSync('npm', ['view', '--json', '--prefer-offline', '@modelcontextprotocol/sdk@^1.32.2', 'version'], { cwd: REPO_ROOT, encoding: 'utf8' }));
  const version = Array.isArray(sdk) ? sdk.at(-1) : sdk;
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', bin: { [name]: 'server.js' }, dependencies: { '@modelcontextprotocol/sdk': version, zod: '^4' } }));
  const tools = opts.tools.map((t) => `server.registerTool(${JSON.stringify(t)}, { description: 'x' }, async () => ({ content: [{ type: 'text', text: 'x' }] }));`).join('\n');
  writeFileSync(
    path.join(dir, 'server.js'),
    `#!/usr/bin/env node\nimport { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';\nimport { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';\nconst server = new McpServer({ name: ${JSON.stringify(name)}, version: ${JSON.stringify(opts.reportVersion)} });\n${tools}\nawait server.connect(new StdioServerTransport());\n`,
  );
  chmodSync(path.join(dir, 'server.js'), 0o755);
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: dir, encoding: 'utf8' });
  return path.join(work, JSON.parse(out)[0].filename);
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'smoke-mcp-e2e-'));
  fixtureCli = buildFixtureCli(work);
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: path.join(REPO_ROOT, 'packages/vmaf-mcp'), encoding: 'utf8' });
  realTarball = path.join(work, JSON.parse(out.slice(out.lastIndexOf('\n[') + 1))[0].filename);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('mcp-release smoke-mcp', () => {
  it('passes on the packed vmaf-mcp tarball: initialize, the four tools, and a correct score', async () => {
    const r = await cli(['smoke-mcp', realTarball, '--vmaf-bin', fixtureCli, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, package: 'vmaf-mcp', serverInfo: { name: 'vmaf-mcp', version: report.version } });
    expect(report.tools).toEqual(['list_backends', 'list_models', 'vmaf_benchmark', 'vmaf_score']);
    expect(report.score.measured).toBeCloseTo(report.score.expected, 4);
  });

  it('fails a server whose serverInfo.version is not its package version', async () => {
    const r = await cli(['smoke-mcp', fakeServer('liar-mcp', { reportVersion: '9.9.9', tools: ['vmaf_score'] }), '--vmaf-bin', fixtureCli]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error SMOKE_VERSION_MISMATCH: serverInfo.version is "9.9.9" but the tarball is liar-mcp@1.0.0/);
  });

  it('fails a server that lacks tools', async () => {
    const r = await cli(['smoke-mcp', fakeServer('thin-mcp', { reportVersion: '1.0.0', tools: ['vmaf_score'] }), '--vmaf-bin', fixtureCli]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error SMOKE_TOOLS_MISSING: tools\/list lacks list_backends, list_models, vmaf_benchmark/);
  });

  it('fails when the score is wrong, and on something that is not a tarball', async () => {
    const wrong = path.join(work, 'wrong-vmaf');
    writeFileSync(
      wrong,
      `#!${process.execPath}\nconst a = process.argv.slice(2);\nif (a.includes('--help')) process.exit(1);\nrequire('node:fs').writeFileSync(a[a.indexOf('-o') + 1], JSON.stringify({ frames: [], pooled_metrics: { psnr_y: { min: 12, max: 12, mean: 12, harmonic_mean: 12 } } }));\n`,
    );
    chmodSync(wrong, 0o755);
    const r = await cli(['smoke-mcp', realTarball, '--vmaf-bin', wrong]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error SMOKE_SCORE_WRONG: vmaf_score gave psnr_y 12 but the pair's PSNR is/);

    writeFileSync(path.join(work, 'junk.tgz'), 'not gzip');
    const junk = await cli(['smoke-mcp', path.join(work, 'junk.tgz'), '--vmaf-bin', fixtureCli]);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/error SMOKE_NOT_A_TARBALL/);

    const usage = await cli(['smoke-mcp', realTarball], { env: { ...process.env, VMAF_BIN: '' } });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/fix: pass --vmaf-bin PATH or set VMAF_BIN/);
  });
});

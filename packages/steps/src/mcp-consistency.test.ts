import { copyFile, mkdir, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newManifest, type Manifest } from '@mcp-release/manifest';
import { exec, execChecked } from '@mcp-release/pipeline';
import { releaseContext, runSteps, TEST_PLAN } from '../../../test/helpers/context.js';
import { caught, tempDir } from '../../../test/helpers/tmp.js';
import { checkMcpConsistency, mcpConsistencyStep, type McpConsistencyInput } from './mcp-consistency.js';
import type { Policy } from './policy.js';
import { smokeMcpStep } from './smoke-mcp.js';

const NAME = 'demo-mcp';
const MCP_NAME = 'io.github.demo/demo-mcp';
const PLANNED = { name: NAME, version: '1.2.0', path: 'server' };
const POLICY: Policy = { version: 1, packages: [{ path: 'server' }], mcp: { package: NAME } };

/**
 * A stdio MCP server with no dependencies: it answers initialize with its package.json's name
 * and, unless told to report another, its version.
 */
function serverSource(reportVersion?: string): string {
  return `#!/usr/bin/env node
import { readFileSync } from 'node:fs';
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const version = ${reportVersion ? JSON.stringify(reportVersion) : 'pkg.version'};
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffered += chunk;
  for (let i = buffered.indexOf('\\n'); i >= 0; i = buffered.indexOf('\\n')) {
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    if (!line.trim()) continue;
    const msg = JSON.parse(line);
    if (msg.id === undefined) continue;
    const reply = msg.method === 'initialize'
      ? { jsonrpc: '2.0', id: msg.id, result: { protocolVersion: msg.params.protocolVersion, capabilities: {}, serverInfo: { name: pkg.name, version } } }
      : { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'method not found' } };
    process.stdout.write(JSON.stringify(reply) + '\\n');
  }
});
`;
}

let work: string;
const tarballs: Record<'good' | 'liar' | 'noMcpName', string> = { good: '', liar: '', noMcpName: '' };

async function pack(label: string, opts: { reportVersion?: string; mcpName?: string | null }): Promise<string> {
  const dir = path.join(work, label);
  await mkdir(dir, { recursive: true });
  const pkg = { name: NAME, version: PLANNED.version, type: 'module', license: 'MIT', bin: { [NAME]: 'server.js' }, files: ['server.js'], ...(opts.mcpName === null ? {} : { mcpName: opts.mcpName ?? MCP_NAME }) };
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  await writeFile(path.join(dir, 'server.js'), serverSource(opts.reportVersion), { mode: 0o755 });
  const out = path.join(work, `${label}-out`);
  await mkdir(out);
  const r = await execChecked(exec, 'npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, code: 'TEST_PACK', what: 'npm pack', hint: '' });
  return path.join(out, (JSON.parse(r.stdout) as Array<{ filename: string }>)[0]?.filename as string);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'mcp-consistency-test-'));
  tarballs.good = await pack('good', {});
  tarballs.liar = await pack('liar', { reportVersion: '9.9.9' });
  tarballs.noMcpName = await pack('no-mcp-name', { mcpName: null });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function serverJson(over: { name?: string; version?: string; packages?: unknown[] } = {}): string {
  return `${JSON.stringify(
    {
      $schema: 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json',
      name: over.name ?? MCP_NAME,
      description: 'Demo server',
      version: over.version ?? PLANNED.version,
      packages: over.packages ?? [{ registryType: 'npm', identifier: NAME, version: PLANNED.version, transport: { type: 'stdio' } }],
    },
    null,
    2,
  )}\n`;
}

/** A repository folder with server/server.json (unless null). */
async function repoWith(json: string | null = serverJson()): Promise<string> {
  const repo = await tempDir();
  await mkdir(path.join(repo, 'server'), { recursive: true });
  if (json !== null) await writeFile(path.join(repo, 'server', 'server.json'), json);
  return repo;
}

/** A release context whose manifest holds `tarball` as the build-npm output. */
async function contextWith(tarball: string, repo: string, opts: { policy?: Policy } = {}) {
  const out = await tempDir();
  const manifest: Manifest = newManifest({ ...structuredClone(TEST_PLAN), packages: [{ ...PLANNED }] });
  const ctx = await releaseContext(out, { policy: opts.policy ?? POLICY }, { repoRoot: repo, manifest });
  await copyFile(tarball, path.join(ctx.releaseDir, path.basename(tarball)));
  ctx.stepName = 'build-npm';
  await ctx.addArtifact(path.basename(tarball), 'npm-tarball', 'any', { name: NAME, version: PLANNED.version });
  return ctx;
}

const direct = async (repo: string, over: Partial<McpConsistencyInput> = {}) =>
  checkMcpConsistency({ tarball: tarballs.good, planned: PLANNED, repoRoot: repo, serverInfo: { name: NAME, version: PLANNED.version }, exec, env: process.env, ...over });

describe('mcp-consistency step', () => {
  it('passes a tarball whose package.json, serverInfo (asked of the started server), server.json and mcpName agree', async () => {
    const ctx = await contextWith(tarballs.good, await repoWith());
    const r = await runSteps([mcpConsistencyStep], ctx);
    expect(r.error).toBeUndefined();
    const data = ctx.manifest.steps['mcp-consistency']?.data;
    expect(data).toMatchObject({ package: NAME, version: '1.2.0', serverInfo: { name: NAME, version: '1.2.0', source: 'started' }, mcpName: MCP_NAME, serverJson: 'server/server.json' });
    expect((data?.checks as Array<{ what: string; ok: boolean }>).map((c) => [c.what, c.ok])).toEqual([
      ['packed package.json name', true],
      ['packed package.json version', true],
      ['serverInfo.version', true],
      ['server.json version', true],
      ['server.json name = mcpName', true],
      ['server.json npm identifier', true],
      ['server.json npm package version', true],
    ]);
  });

  it('fails a server whose serverInfo.version is not the planned version', async () => {
    const ctx = await contextWith(tarballs.liar, await repoWith());
    const r = await runSteps([mcpConsistencyStep], ctx);
    expect(r.error).toMatchObject({
      code: 'MCP_SERVERINFO_VERSION',
      message: 'the packed server reports serverInfo.version 9.9.9, but the planned version is 1.2.0',
      hint: expect.stringContaining('server/package.json'),
    });
    expect(ctx.manifest.steps['mcp-consistency']?.state).toBe('failed');
  });

  it("uses the smoke test's recorded serverInfo only when that record describes these exact inputs", async () => {
    const ctx = await contextWith(tarballs.good, await repoWith());
    ctx.manifest.steps['smoke-mcp'] = {
      state: 'succeeded',
      fingerprint: await smokeMcpStep.fingerprint?.(ctx),
      data: { package: NAME, version: '1.2.0', serverInfo: { name: NAME, version: '1.2.0-rc.1' } },
    };
    const recorded = await runSteps([mcpConsistencyStep], ctx);
    expect(recorded.error).toMatchObject({ code: 'MCP_SERVERINFO_VERSION', message: expect.stringContaining('reports serverInfo.version 1.2.0-rc.1') });

    // A record for other inputs (another tarball) is not trusted: the packed server is asked.
    (ctx.manifest.steps['smoke-mcp'] as { fingerprint: string }).fingerprint = 'f'.repeat(64);
    delete ctx.manifest.steps['mcp-consistency'];
    const asked = await runSteps([mcpConsistencyStep], ctx);
    expect(asked.error).toBeUndefined();
    expect(ctx.manifest.steps['mcp-consistency']?.data?.serverInfo).toEqual({ name: NAME, version: '1.2.0', source: 'started' });
  });

  it('refuses a tarball changed after it was recorded, and skips without an MCP package', async () => {
    const ctx = await contextWith(tarballs.good, await repoWith());
    await appendFile(path.join(ctx.releaseDir, path.basename(tarballs.good)), 'x');
    const r = await runSteps([mcpConsistencyStep], ctx);
    expect(r.error).toMatchObject({ code: 'ARTIFACT_CHANGED', message: expect.stringContaining(path.basename(tarballs.good)) });

    const none = await contextWith(tarballs.good, await repoWith(), { policy: { version: 1, packages: [{ path: 'server' }] } });
    await runSteps([mcpConsistencyStep], none);
    expect(none.manifest.steps['mcp-consistency']).toMatchObject({ state: 'skipped', reason: expect.stringContaining('mcp.package') });
  });
});

describe('checkMcpConsistency', () => {
  it('fails a server.json whose version is not the planned version, naming both and the file', async () => {
    const err = await caught(async () => direct(await repoWith(serverJson({ version: '1.1.0' }))));
    expect(err).toMatchObject({
      code: 'MCP_SERVER_JSON_VERSION',
      message: 'server/server.json has version 1.1.0, but the planned version is 1.2.0',
      hint: expect.stringContaining('set "version": "1.2.0" in server/server.json'),
    });
  });

  it('fails when the server.json name is not the mcpName, or mcpName is missing', async () => {
    const err = await caught(async () => direct(await repoWith(serverJson({ name: 'io.github.demo/other' }))));
    expect(err).toMatchObject({
      code: 'MCP_NAME_MISMATCH',
      message: `server/server.json names the server io.github.demo/other, but mcpName in server/package.json is ${MCP_NAME}`,
      hint: expect.stringContaining('MCP registry'),
    });
    const missing = await caught(async () => direct(await repoWith(), { tarball: tarballs.noMcpName }));
    expect(missing).toMatchObject({ code: 'MCP_NAME_MISSING', hint: expect.stringContaining(`add "mcpName": "${MCP_NAME}" to server/package.json`) });
  });

  it("fails when server.json's npm package is another package, absent, or of another version", async () => {
    const other = await caught(async () => direct(await repoWith(serverJson({ packages: [{ registryType: 'npm', identifier: '@demo/renamed', version: '1.2.0' }] }))));
    expect(other).toMatchObject({
      code: 'MCP_SERVER_JSON_IDENTIFIER',
      message: 'server/server.json lists the npm package @demo/renamed, but the package released is demo-mcp',
      hint: expect.stringContaining('"identifier": "demo-mcp"'),
    });
    const none = await caught(async () => direct(await repoWith(serverJson({ packages: [{ registryType: 'pypi', identifier: NAME, version: '1.2.0' }] }))));
    expect(none).toMatchObject({ code: 'MCP_SERVER_JSON_NO_NPM_PACKAGE' });
    const stale = await caught(async () => direct(await repoWith(serverJson({ packages: [{ registryType: 'npm', identifier: NAME, version: '1.0.0' }] }))));
    expect(stale).toMatchObject({ code: 'MCP_SERVER_JSON_PACKAGE_VERSION', message: 'the npm package demo-mcp in server/server.json has version 1.0.0, but the planned version is 1.2.0' });
  });

  it('lists every mismatch when the tarball is not the planned version', async () => {
    const err = await caught(async () => direct(await repoWith(), { planned: { ...PLANNED, version: '1.3.0' }, serverInfo: { name: NAME, version: '1.2.0' } }));
    expect(err).toMatchObject({ code: 'MCP_TARBALL_VERSION', message: `${path.basename(tarballs.good)} holds version 1.2.0 in its package.json, but the planned version is 1.3.0` });
    expect(err.details?.map((d) => d.split(':')[0])).toEqual(['MCP_TARBALL_VERSION', 'MCP_SERVERINFO_VERSION', 'MCP_SERVER_JSON_VERSION', 'MCP_SERVER_JSON_PACKAGE_VERSION']);
  });

  it('accepts the older server.json shape at the repository root, and no server.json at all', async () => {
    const repo = await repoWith(null);
    await writeFile(
      path.join(repo, 'server.json'),
      JSON.stringify({ name: MCP_NAME, version_detail: { version: '1.2.0' }, packages: [{ registry_name: 'npm', name: NAME, version: '1.2.0' }] }),
    );
    expect(await direct(repo)).toMatchObject({ serverJson: 'server.json', mcpName: MCP_NAME, serverInfo: { source: 'smoke-mcp' } });
    const bare = await direct(await repoWith(null));
    expect(bare.serverJson).toBeNull();
    expect(bare.checks.map((c) => c.what)).toEqual(['packed package.json name', 'packed package.json version', 'serverInfo.version']);
  });

  it('refuses a server.json that is not JSON and a file that is not a tarball', async () => {
    expect(await caught(async () => direct(await repoWith('{ "name": ')))).toMatchObject({ code: 'MCP_SERVER_JSON_INVALID', message: expect.stringContaining('server/server.json is not valid JSON') });
    const junk = path.join(work, 'junk.tgz');
    await writeFile(junk, 'not a tarball');
    expect(await caught(async () => direct(await repoWith(), { tarball: junk }))).toMatchObject({ code: 'MCP_TARBALL_UNREADABLE' });
  });
});

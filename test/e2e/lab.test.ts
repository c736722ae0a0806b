import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleToJSON, bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { FulcioSigner, MessageSignatureBundleBuilder, RekorWitness, TSAWitness } from '@sigstore/sign';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cli, run } from '../helpers/cli.js';
import { REPO_ROOT, tempDir } from '../helpers/tmp.js';

interface LabInfo {
  pid: number;
  urls: Record<string, string>;
  env: Record<string, string>;
  bootstrap: { npmAdminToken: string; npmrcLine: string };
}

const running: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const c of running.splice(0)) if (c.exitCode === null) c.kill('SIGTERM');
});

/** Starts `mcp-release lab start --json` as its own process; resolves with the JSON line it prints. */
function startLabProcess(state: string): Promise<{ child: ChildProcessWithoutNullStreams; info: LabInfo; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, 'lab', 'start', '--state', state, '--json'], { cwd: REPO_ROOT, stdio: 'pipe' });
  running.push(child);
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, info: JSON.parse(out.slice(0, nl)) as LabInfo, exited });
    });
    child.on('close', (code) => reject(new Error(`lab start exited ${code}: ${err}`)));
  });
}

const sha512Integrity = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`;

describe('mcp-release lab', () => {
  it('starts every service, and a release run works from the printed environment alone', async () => {
    const state = await tempDir();
    const { info, exited } = await startLabProcess(state);
    const env = { ...process.env, ...info.env };
    expect(Object.keys(info.urls).sort()).toEqual(['fulcio', 'github', 'oidc', 'registry', 'rekor', 'tsa', 'tufMirror']);
    for (const k of ['ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN', 'NPM_CONFIG_REGISTRY', 'GITHUB_API_URL', 'MCP_RELEASE_TRUSTED_ROOT']) expect(info.env[k], k).toBeTruthy();

    // npm: the first version with the bootstrap token, the next through trusted publishing (no token anywhere).
    const pkgDir = path.join(state, 'pkg');
    await mkdir(pkgDir);
    const writePkg = (version: string): Promise<void> => writeFile(path.join(pkgDir, 'package.json'), JSON.stringify({ name: 'vmaf-mcp', version, license: 'MIT' }));
    await writeFile(path.join(pkgDir, 'index.js'), 'export {};\n');
    const npmrc = path.join(state, 'bootstrap.npmrc');
    await writeFile(npmrc, `${info.bootstrap.npmrcLine}\n`);
    await writePkg('0.0.1');
    const first = await run('npm', ['publish', '--registry', info.env.NPM_CONFIG_REGISTRY as string, '--fetch-retries=0'], { cwd: pkgDir, env: { ...process.env, npm_config_userconfig: npmrc } });
    expect(first.code, first.stderr).toBe(0);
    await writePkg('0.0.2');
    const empty = path.join(state, 'empty.npmrc');
    await writeFile(empty, '');
    const oidcPublish = await run('npm', ['publish', '--fetch-retries=0'], { cwd: pkgDir, env: { ...env, npm_config_userconfig: empty } });
    expect(oidcPublish.code, oidcPublish.stderr).toBe(0);
    const view = await run('npm', ['view', 'vmaf-mcp@0.0.2', 'dist.integrity', '--registry', info.env.NPM_CONFIG_REGISTRY as string], { cwd: state });
    expect(view.stdout.trim()).toMatch(/^sha512-/);

    // Sigstore: a keyless signature from the job's token, verified against the trust root file.
    const artifact = randomBytes(4096);
    const getToken = async (): Promise<string> => {
      const r = await fetch(`${info.env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=sigstore`, { headers: { authorization: `Bearer ${info.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}` } });
      return ((await r.json()) as { value: string }).value;
    };
    const builder = new MessageSignatureBundleBuilder({
      signer: new FulcioSigner({ fulcioBaseURL: info.env.MCP_RELEASE_FULCIO_URL as string, identityProvider: { getToken } }),
      witnesses: [new RekorWitness({ rekorBaseURL: info.env.MCP_RELEASE_REKOR_URL as string }), new TSAWitness({ tsaBaseURL: info.env.MCP_RELEASE_TSA_URL as string })],
    });
    const bundle = bundleToJSON(await builder.create({ data: artifact }));
    const trustedRoot = TrustedRoot.fromJSON(JSON.parse(await readFile(info.env.MCP_RELEASE_TRUSTED_ROOT as string, 'utf8')));
    const verifier = new Verifier(toTrustMaterial(trustedRoot));
    const san = 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/main';
    const policy = { subjectAlternativeName: new RegExp(`^${san.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`) as unknown as string, extensions: { issuer: info.env.MCP_RELEASE_OIDC_ISSUER as string } };
    expect(() => verifier.verify(toSignedEntity(bundleFromJSON(bundle), artifact), policy)).not.toThrow();
    expect(() => verifier.verify(toSignedEntity(bundleFromJSON(bundle), Buffer.concat([artifact, Buffer.from([0])])), policy)).toThrow();

    // GitHub: octokit over TLS with the lab CA, then gh downloads what was uploaded.
    const asset = path.join(state, 'asset.bin');
    const assetBytes = randomBytes(300_000);
    await writeFile(asset, assetBytes);
    const rel = await run(process.execPath, [path.join(REPO_ROOT, 'test/helpers/github-release.mjs'), 'mcp-release', 'vmaf-mcp', 'v0.0.2', asset], { env });
    expect(rel.code, rel.stderr).toBe(0);
    expect(JSON.parse(rel.stdout)).toMatchObject({ draft: false, assets: ['asset.bin'] });
    const dl = path.join(state, 'download');
    const gh = await run('gh', ['release', 'download', 'v0.0.2', '-R', `${info.env.GH_HOST}/mcp-release/vmaf-mcp`, '-D', dl], { env });
    expect(gh.code, gh.stderr).toBe(0);
    expect((await readFile(path.join(dl, 'asset.bin'))).equals(assetBytes)).toBe(true);

    // env, then stop
    const exports = await cli(['lab', 'env', '--state', state]);
    expect(exports.stdout).toMatch(/^export ACTIONS_ID_TOKEN_REQUEST_URL='http:\/\/127\.0\.0\.1:\d+\/token\?api-version=2\.0'$/m);
    const trustedBefore = await readFile(info.env.MCP_RELEASE_TRUSTED_ROOT as string);
    const stop = await cli(['lab', 'stop', '--state', state]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(await exited).toBe(0);
    await expect(readFile(path.join(state, 'lab.json'))).rejects.toThrow();

    // a restart on the same state keeps the trust root, the registry and the releases
    const again = await startLabProcess(state);
    expect(await readFile(again.info.env.MCP_RELEASE_TRUSTED_ROOT as string)).toEqual(trustedBefore);
    const stillThere = await run('npm', ['view', 'vmaf-mcp@0.0.2', 'dist.integrity', '--registry', again.info.env.NPM_CONFIG_REGISTRY as string], { cwd: state });
    expect(stillThere.stdout.trim()).toBe(view.stdout.trim());
    expect(() => new Verifier(toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(trustedBefore.toString())))).verify(toSignedEntity(bundleFromJSON(bundle), artifact), policy)).not.toThrow();
    expect((await cli(['lab', 'stop', '--state', state])).code).toBe(0);
    expect(await again.exited).toBe(0);
    void sha512Integrity;
  });

  it('refuses a second lab on the same state, a stop with none running, and fixed ports, with the fix', async () => {
    const state = await tempDir();
    const { exited } = await startLabProcess(state);
    const twice = await cli(['lab', 'start', '--state', state]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/error LAB_ALREADY_RUNNING: .*\n {2}fix: stop it first: mcp-release lab stop --state/);
    expect((await cli(['lab', 'stop', '--state', state])).code).toBe(0);
    expect(await exited).toBe(0);

    const none = await cli(['lab', 'stop', '--state', state]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/error LAB_NOT_RUNNING: no lab is running with state folder/);
    const port = await cli(['lab', 'start', '--port', '8080']);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/fix: use --port 0/);
    const action = await cli(['lab', 'reboot']);
    expect(action.code).toBe(2);
  });
});

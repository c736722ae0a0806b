import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type MintOptions, OidcService } from '../oidc.js';
import { type RegistryLab, startRegistry, type TrustedPublisher } from './index.js';

/*
 * End to end with the real npm CLI, started as async child processes (a synchronous spawn would
 * block this process, where the registry runs). Each npm gets a clean environment: an empty
 * user and global config, its own cache, provenance off, no retries.
 */

const BINDINGS: TrustedPublisher[] = [
  { package: 'lab-widget', repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', environment: 'release' },
  { package: '@lab/scoped-widget', repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml' },
  { package: 'lab-gadget', repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', environment: 'release' },
  { package: 'lab-fresh', repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', environment: 'release' },
  { package: 'lab-persist', repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', environment: 'release' },
];

let work: string;
let oidc: OidcService;
let lab: RegistryLab;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let counter = 0;
async function scratch(prefix: string): Promise<string> {
  const dir = path.join(work, `${prefix}-${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A user config holding these lines (a token, or nothing at all). */
async function userconfig(lines: string[] = []): Promise<string> {
  const file = path.join(await scratch('npmrc'), '.npmrc');
  await writeFile(file, lines.length ? `${lines.join('\n')}\n` : '');
  return file;
}

function tokenLine(registry: RegistryLab, token: string): string {
  const u = new URL(registry.url);
  return `//${u.host}${u.pathname}:_authToken=${token}`;
}

interface NpmOptions {
  registry?: RegistryLab;
  cwd?: string;
  npmrc?: string;
  env?: Record<string, string>;
  /** An empty cache: npm would otherwise answer from a stale cached copy when the network fails. */
  freshCache?: boolean;
}

async function npm(args: string[], options: NpmOptions = {}): Promise<Run> {
  const registry = options.registry ?? lab;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: path.join(work, 'home'),
    TMPDIR: os.tmpdir(),
    npm_config_userconfig: options.npmrc ?? (await userconfig()),
    npm_config_globalconfig: path.join(work, 'empty-globalconfig'),
    npm_config_cache: options.freshCache ? await scratch('npm-cache') : path.join(work, 'npm-cache'),
    npm_config_registry: registry.url,
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    NPM_CONFIG_PROVENANCE: 'false',
    ...options.env,
  };
  return run('npm', [...args, '--fetch-retries=0'], options.cwd ?? work, env);
}

async function makePackage(name: string, version: string): Promise<string> {
  const dir = await scratch('pkg');
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify({ name, version, description: 'lab registry fixture', license: 'MIT', main: 'index.js' }, null, 2)}\n`);
  await writeFile(path.join(dir, 'index.js'), `module.exports = ${JSON.stringify(`${name}@${version}`)};\n`);
  return dir;
}

/** First publish of a name, with the admin's classic token: the bootstrap trusted publishing cannot do. */
async function bootstrap(name: string, version = '1.0.0', registry = lab): Promise<void> {
  const result = await npm(['publish', '--access', 'public'], { registry, cwd: await makePackage(name, version), npmrc: await userconfig([tokenLine(registry, registry.adminToken)]) });
  expect(result.code, result.stderr).toBe(0);
}

/** `npm publish` as a GitHub Actions job would run it: OIDC only, no token anywhere. */
async function publishFromActions(cwd: string, options: { registry?: RegistryLab; idToken?: string } = {}): Promise<Run> {
  const env: Record<string, string> = { GITHUB_ACTIONS: 'true' };
  if (options.idToken) env.NPM_ID_TOKEN = options.idToken;
  else Object.assign(env, { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken });
  return npm(['publish', '--access', 'public', '--loglevel=verbose'], { registry: options.registry ?? lab, cwd, env });
}

interface Manifest {
  name: string;
  version: string;
  versions?: string[];
  dist: { integrity: string; tarball: string };
}

/** `npm view <spec> --json`: the manifest, or undefined when npm shows nothing. */
async function view(spec: string, registry = lab): Promise<Manifest | undefined> {
  const result = await npm(['view', spec, '--json', '--prefer-online'], { registry });
  if (result.code !== 0) {
    expect(result.stderr).toMatch(/E404/);
    return undefined;
  }
  const text = result.stdout.trim();
  return text ? (JSON.parse(text) as Manifest) : undefined;
}

async function exchange(registry: RegistryLab, name: string, idToken?: string): Promise<{ status: number; body: { token?: string; message?: string; error?: string; code?: string } }> {
  const escaped = name.replace('/', '%2f');
  const res = await fetch(new URL(`-/npm/v1/oidc/token/exchange/package/${escaped}`, registry.url), { method: 'POST', headers: idToken ? { authorization: `Bearer ${idToken}` } : {} });
  return { status: res.status, body: (await res.json()) as { token?: string; message?: string } };
}

async function sha512(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return `sha512-${createHash('sha512').update(Buffer.from(await res.arrayBuffer())).digest('base64')}`;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'registry-lab-test-'));
  await mkdir(path.join(work, 'home'), { recursive: true });
  await writeFile(path.join(work, 'empty-globalconfig'), '');
  oidc = new OidcService();
  await oidc.start();
  lab = await startRegistry({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks`, trustedPublishers: BINDINGS });
});

afterAll(async () => {
  await lab?.stop();
  await oidc?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(() => {
  lab.chaos.clear();
});

describe('lab registry: trusted publishing with the real npm CLI', () => {
  it('bootstraps a name with the admin token, then publishes through the OIDC exchange with no token anywhere', async () => {
    expect(lab.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(lab.audience).toBe('npm:127.0.0.1');
    await bootstrap('lab-widget');

    const dir = await makePackage('lab-widget', '1.1.0');
    // packed elsewhere: a tarball left in the folder would be published with the package
    const packed = await npm(['pack', '--json', '--pack-destination', await scratch('packed')], { cwd: dir });
    expect(packed.code, packed.stderr).toBe(0);
    const integrity = (JSON.parse(packed.stdout) as Array<{ integrity: string }>)[0]?.integrity;
    expect(integrity).toMatch(/^sha512-/);

    const published = await publishFromActions(dir);
    expect(published.code, published.stderr).toBe(0);
    expect(published.stdout).toContain('+ lab-widget@1.1.0');
    expect(published.stderr).toMatch(/POST 201 http:\/\/127\.0\.0\.1:\d+\/-\/npm\/v1\/oidc\/token\/exchange\/package\/lab-widget/);
    expect(published.stderr).toContain('Successfully retrieved and set token');
    expect(lab.exchanges.at(-1)).toMatchObject({ package: 'lab-widget', status: 201, repository: 'mcp-release/vmaf-mcp', environment: 'release' });

    const manifest = await view('lab-widget@1.1.0');
    expect(manifest).toMatchObject({ name: 'lab-widget', version: '1.1.0' });
    expect(manifest?.dist.integrity).toBe(integrity);
    expect(await sha512(manifest?.dist.tarball as string)).toBe(integrity);
  });

  it('escapes scoped names as npm does, and a binding without environment accepts any', async () => {
    await bootstrap('@lab/scoped-widget');
    const published = await publishFromActions(await makePackage('@lab/scoped-widget', '1.1.0'));
    expect(published.code, published.stderr).toBe(0);
    expect(lab.log.some((r) => r.method === 'POST' && r.path === '/-/npm/v1/oidc/token/exchange/package/@lab%2fscoped-widget' && r.status === 201)).toBe(true);
    expect((await view('@lab/scoped-widget@1.1.0'))?.version).toBe('1.1.0');
  });

  const refusals: Array<{ what: string; claims?: MintOptions['claims']; expiresIn?: number; audience?: string; status: number; code: string; text: RegExp }> = [
    { what: 'the wrong workflow', claims: { workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/ci.yml@refs/heads/main' }, status: 404, code: 'wrong-workflow', text: /package not found \(.*workflow release\.yml, the ID token is from ci\.yml\)/ },
    { what: 'the wrong environment', claims: { environment: 'staging' }, status: 404, code: 'wrong-environment', text: /requires environment release, the ID token has environment staging/ },
    { what: 'no environment', claims: { environment: undefined }, status: 404, code: 'wrong-environment', text: /requires environment release, the ID token has no environment/ },
    {
      what: 'the wrong repository',
      claims: { repository: 'someone/fork', repository_owner: 'someone', workflow_ref: 'someone/fork/.github/workflows/release.yml@refs/heads/main' },
      status: 404,
      code: 'wrong-repository',
      text: /is repository mcp-release\/vmaf-mcp, the ID token is from someone\/fork/,
    },
    { what: 'an expired token', expiresIn: -120, status: 401, code: 'expired-token', text: /invalid ID token \(the ID token expired at / },
    { what: 'the wrong audience', audience: 'npm:registry.example.invalid', status: 401, code: 'wrong-audience', text: /audience "npm:registry\.example\.invalid" is not "npm:127\.0\.0\.1"/ },
  ];

  for (const c of refusals) {
    it(`refuses ${c.what}: its own message on the exchange, ENEEDAUTH from npm, nothing published`, async () => {
      const idToken = await oidc.mint(c.audience ?? lab.audience, { ...(c.claims ? { claims: c.claims } : {}), ...(c.expiresIn !== undefined ? { expiresIn: c.expiresIn } : {}) });
      const direct = await exchange(lab, 'lab-widget', idToken);
      expect(direct.status).toBe(c.status);
      expect(direct.body.code).toBe(c.code);
      expect(direct.body.message).toMatch(/^OIDC token exchange error - /);
      expect(direct.body.message).toMatch(c.text);
      expect(direct.body.token).toBeUndefined();

      const published = await publishFromActions(await makePackage('lab-widget', '1.2.0'), { idToken });
      expect(published.code).not.toBe(0);
      expect(published.stderr).toContain('code ENEEDAUTH');
      // npm keeps the registry's reason for its verbose log only
      expect(published.stderr).toContain(`Failed token exchange request with body message: ${direct.body.message}`);
      expect(await view('lab-widget@1.2.0')).toBeUndefined();
    });
  }

  it('refuses claims npm gets from the token endpoint too (the job is in another repository)', async () => {
    const saved = oidc.claims;
    oidc.claims = { ...saved, repository: 'someone/fork', workflow_ref: 'someone/fork/.github/workflows/release.yml@refs/heads/main' };
    try {
      const published = await publishFromActions(await makePackage('lab-widget', '1.2.0'));
      expect(published.code).not.toBe(0);
      expect(published.stderr).toContain('code ENEEDAUTH');
      expect(lab.exchanges.at(-1)).toMatchObject({ package: 'lab-widget', status: 404, reason: 'wrong-repository', repository: 'someone/fork' });
    } finally {
      oidc.claims = saved;
    }
    expect(await view('lab-widget@1.2.0')).toBeUndefined();
  });

  it('refuses a token from another issuer and a request without a token', async () => {
    const other = new OidcService();
    await other.start();
    try {
      const forged = await exchange(lab, 'lab-widget', await other.mint(lab.audience));
      expect(forged.status).toBe(401);
      expect(forged.body.code).toMatch(/^(invalid-token|wrong-issuer)$/);
    } finally {
      await other.stop();
    }
    const none = await exchange(lab, 'lab-widget');
    expect(none).toMatchObject({ status: 401, body: { code: 'missing-token' } });
  });

  it('refuses a package without a binding, and a bound package that does not exist yet', async () => {
    await bootstrap('lab-unbound');
    const idToken = await oidc.mint(lab.audience);
    const unbound = await exchange(lab, 'lab-unbound', idToken);
    expect(unbound.status).toBe(404);
    expect(unbound.body).toMatchObject({ code: 'no-trusted-publisher', message: 'OIDC token exchange error - package not found (no trusted publisher is configured for "lab-unbound")' });
    const fresh = await exchange(lab, 'lab-fresh', idToken);
    expect(fresh.status).toBe(404);
    expect(fresh.body.code).toBe('package-not-found');
    expect(fresh.body.message).toMatch(/"lab-fresh" does not exist yet; trusted publishing cannot create a package/);

    for (const [name, message] of [['lab-unbound', unbound.body.message], ['lab-fresh', fresh.body.message]] as const) {
      const published = await publishFromActions(await makePackage(name, '1.1.0'));
      expect(published.code).not.toBe(0);
      expect(published.stderr).toContain('code ENEEDAUTH');
      expect(published.stderr).toContain(`Failed token exchange request with body message: ${message}`);
    }
    expect(await view('lab-unbound@1.1.0')).toBeUndefined();
    expect(await view('lab-fresh')).toBeUndefined();

    // the binding list can change while the registry runs
    lab.setTrustedPublishers([...BINDINGS, { package: 'lab-unbound', repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml' }]);
    try {
      expect((await exchange(lab, 'lab-unbound', idToken)).status).toBe(201);
    } finally {
      lab.setTrustedPublishers(BINDINGS);
    }
    expect(() => lab.setTrustedPublishers([{ package: 'Bad Name', repository: 'nope', workflow: '.github/workflows/release.yml' }])).toThrow(/invalid/);
  });

  it('an exchanged token for one package cannot publish another (403), nor do anything but publish', async () => {
    await bootstrap('lab-gadget');
    const granted = await exchange(lab, 'lab-widget', await oidc.mint(lab.audience));
    expect(granted.status).toBe(201);
    const npmrc = await userconfig([tokenLine(lab, granted.body.token as string)]);

    const other = await npm(['publish'], { cwd: await makePackage('lab-gadget', '1.1.0'), npmrc });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/E403/);
    expect(other.stderr).toContain('You do not have permission to publish "lab-gadget"');
    expect(other.stderr).toContain('limited to "lab-widget"');
    expect(await view('lab-gadget@1.1.0')).toBeUndefined();

    const headers = { authorization: `Bearer ${granted.body.token as string}`, 'content-type': 'application/json' };
    const tag = await fetch(new URL('-/package/lab-widget/dist-tags/next', lab.url), { method: 'PUT', headers, body: '"1.0.0"' });
    expect(tag.status).toBe(403);
    const unpublish = await fetch(new URL('lab-widget/-rev/1-abc', lab.url), { method: 'DELETE', headers });
    expect(unpublish.status).toBe(403);
    // a document for another package sent to its own URL, and a PUT that publishes nothing
    const smuggled = await fetch(new URL('lab-widget', lab.url), { method: 'PUT', headers, body: JSON.stringify({ name: 'lab-gadget', versions: {}, _attachments: { 'x.tgz': {} } }) });
    expect(smuggled.status).toBe(403);
    const deprecate = await npm(['deprecate', 'lab-widget@1.0.0', 'old'], { npmrc });
    expect(deprecate.code).not.toBe(0);
    expect(deprecate.stderr).toMatch(/E403[\s\S]*can only publish new versions/);

    const own = await npm(['publish'], { cwd: await makePackage('lab-widget', '1.3.0'), npmrc });
    expect(own.code, own.stderr).toBe(0);
    expect((await view('lab-widget@1.3.0'))?.version).toBe('1.3.0');

    const unknown = await fetch(new URL('lab-widget', lab.url), { headers: { authorization: 'Bearer npm_not-a-lab-token' } });
    expect(unknown.status).toBe(401);
  });

  it('stores attestations with the exchanged token and serves them in npm\'s shape', async () => {
    const manifest = (await view('lab-widget@1.1.0')) as Manifest;
    const hex = Buffer.from(manifest.dist.integrity.slice('sha512-'.length), 'base64').toString('hex');
    const predicateType = 'https://slsa.dev/provenance/v1';
    const bundleFor = (name: string, digest: string, sig = 'c2ln'): Record<string, unknown> => ({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { certificate: { rawBytes: 'Y2VydA==' }, tlogEntries: [] },
      dsseEnvelope: {
        payloadType: 'application/vnd.in-toto+json',
        payload: Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name, digest: { sha512: digest } }], predicateType, predicate: {} })).toString('base64'),
        signatures: [{ sig, keyid: '' }],
      },
    });
    const granted = await exchange(lab, 'lab-widget', await oidc.mint(lab.audience));
    const put = (spec: string, body: unknown, token: string | null = granted.body.token ?? null): Promise<Response> =>
      fetch(new URL(`-/npm/v1/attestations/${spec}`, lab.url), { method: 'PUT', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    const bundle = bundleFor('pkg:npm/lab-widget@1.1.0', hex);

    expect((await fetch(new URL('-/npm/v1/attestations/lab-widget@1.1.0', lab.url))).status).toBe(404);
    expect((await put('lab-widget@1.1.0', { predicateType, bundle }, null)).status).toBe(401);
    const wrongDigest = await put('lab-widget@1.1.0', { predicateType, bundle: bundleFor('pkg:npm/lab-widget@1.1.0', '00'.repeat(64)) });
    expect(wrongDigest.status).toBe(422);
    expect(((await wrongDigest.json()) as { error: string }).error).toMatch(/is not the tarball's sha512/);
    expect((await put('lab-widget@1.1.0', { predicateType, bundle: bundleFor('pkg:npm/lab-widget@1.0.0', hex) })).status).toBe(422);
    expect((await put('lab-widget@9.9.9', { predicateType, bundle })).status).toBe(404);
    expect((await put('lab-gadget@1.0.0', { predicateType, bundle })).status).toBe(403);

    const created = await put('lab-widget@1.1.0', { predicateType, bundle });
    expect(created.status).toBe(201);
    expect((await put('lab-widget@1.1.0', { predicateType, bundle })).status).toBe(200);
    expect((await put('lab-widget@1.1.0', { predicateType, bundle: bundleFor('pkg:npm/lab-widget@1.1.0', hex, 'b3RoZXI=') })).status).toBe(409);

    const got = await fetch(new URL('-/npm/v1/attestations/lab-widget@1.1.0', lab.url));
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual({ attestations: [{ predicateType, bundle }] });

    // scoped names: the purl encodes the scope's @, the path escapes its slash; the admin may store too
    const scoped = (await view('@lab/scoped-widget@1.1.0')) as Manifest;
    const scopedHex = Buffer.from(scoped.dist.integrity.slice(7), 'base64').toString('hex');
    const scopedBundle = bundleFor('pkg:npm/%40lab/scoped-widget@1.1.0', scopedHex);
    expect((await put('@lab%2fscoped-widget@1.1.0', { predicateType, bundle: scopedBundle }, lab.adminToken)).status).toBe(201);
    const scopedGot = await fetch(new URL('-/npm/v1/attestations/@lab%2fscoped-widget@1.1.0', lab.url));
    expect(await scopedGot.json()).toEqual({ attestations: [{ predicateType, bundle: scopedBundle }] });
  });
});

describe('lab registry: chaos seen by npm', () => {
  it('a 503 on the exchange leaves npm without a token (ENEEDAUTH); the next run publishes', async () => {
    lab.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'status', status: 503 } });
    const dir = await makePackage('lab-widget', '1.4.0');
    const failed = await publishFromActions(dir);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/POST 503 http:\/\/127\.0\.0\.1:\d+\/-\/npm\/v1\/oidc\/token\/exchange\/package\/lab-widget/);
    expect(failed.stderr).toContain('code ENEEDAUTH');
    expect(lab.log.filter((r) => r.fault === 'status' && r.status === 503)).toHaveLength(1);
    expect(await view('lab-widget@1.4.0')).toBeUndefined();
    const again = await publishFromActions(dir);
    expect(again.code, again.stderr).toBe(0);
  });

  it('a 500 on the publish PUT fails npm with E500 after one attempt; nothing is published', async () => {
    lab.chaos.add({ route: '^/lab-widget$', method: 'PUT', count: 1, fault: { kind: 'status', status: 500 } });
    const dir = await makePackage('lab-widget', '1.5.0');
    const failed = await publishFromActions(dir);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/code E500/);
    expect(failed.stderr).toMatch(/500 Internal Server Error - PUT http:\/\/127\.0\.0\.1:\d+\/lab-widget/);
    expect(lab.log.filter((r) => r.method === 'PUT' && r.path === '/lab-widget' && r.status === 500)).toHaveLength(1);
    expect(await view('lab-widget@1.5.0')).toBeUndefined();
    const again = await publishFromActions(dir);
    expect(again.code, again.stderr).toBe(0);
    expect((await view('lab-widget@1.5.0'))?.version).toBe('1.5.0');
  });

  it('a connection reset on the packument and a 503 on the tarball fail npm', async () => {
    lab.chaos.add({ route: '^/lab-widget$', method: 'GET', count: 1, fault: { kind: 'reset' } });
    const reset = await npm(['view', 'lab-widget', 'version'], { freshCache: true });
    expect(reset.code).not.toBe(0);
    expect(reset.stderr).toMatch(/code ECONNRESET[\s\S]*socket hang up/);
    expect(lab.log.some((r) => r.fault === 'reset' && r.path === '/lab-widget')).toBe(true);

    lab.chaos.add({ route: '^/lab-widget/-/', method: 'GET', count: 1, fault: { kind: 'status', status: 503 } });
    const tarball = await npm(['pack', 'lab-widget@1.1.0'], { cwd: await scratch('pack'), freshCache: true });
    expect(tarball.code).not.toBe(0);
    expect(tarball.stderr).toMatch(/code E503[\s\S]*503 Service Unavailable - GET http:\/\/127\.0\.0\.1:\d+\/lab-widget\/-\/lab-widget-1\.1\.0\.tgz/);
  });

  it('a request that is never answered times out on npm\'s own (short) timeout', async () => {
    lab.chaos.add({ route: '^/lab-widget$', method: 'GET', count: 1, fault: { kind: 'timeout' } });
    const result = await npm(['view', 'lab-widget', 'version', '--fetch-timeout=1000'], { freshCache: true });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/network timeout at: http:\/\/127\.0\.0\.1:\d+\/lab-widget/);
    expect(lab.log.some((r) => r.fault === 'timeout' && r.path === '/lab-widget')).toBe(true);
  });

  it('a delay and a 4xx on the attestations route reach the client', async () => {
    lab.chaos.add({ route: '^/-/npm/v1/attestations/', count: 1, fault: { kind: 'delay', ms: 50 } });
    lab.chaos.add({ route: '^/-/npm/v1/attestations/', count: 1, fault: { kind: 'status', status: 429, body: '{"error":"slow down"}' } });
    expect((await fetch(new URL('-/npm/v1/attestations/lab-widget@1.1.0', lab.url))).status).toBe(200);
    const limited = await fetch(new URL('-/npm/v1/attestations/lab-widget@1.1.0', lab.url));
    expect(limited.status).toBe(429);
    expect(await limited.json()).toEqual({ error: 'slow down' });
    expect(lab.log.slice(-2).map((r) => r.fault)).toEqual(['delay', 'status']);
  });
});

describe('lab registry: state', () => {
  it('keeps packages, attestations and the admin token across a restart with the same state folder', async () => {
    const stateDir = await scratch('state');
    const options = { oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks`, trustedPublishers: BINDINGS, stateDir };
    const first = await startRegistry(options);
    let integrity: string;
    let adminToken: string;
    const predicateType = 'https://github.com/npm/attestation/tree/main/specs/publish/v0.1';
    try {
      adminToken = first.adminToken;
      await bootstrap('lab-persist', '1.0.0', first);
      const published = await publishFromActions(await makePackage('lab-persist', '1.1.0'), { registry: first });
      expect(published.code, published.stderr).toBe(0);
      integrity = ((await view('lab-persist@1.1.0', first)) as Manifest).dist.integrity;
      const payload = { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'pkg:npm/lab-persist@1.1.0', digest: { sha512: Buffer.from(integrity.slice(7), 'base64').toString('hex') } }], predicateType, predicate: {} };
      const bundle = { mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', dsseEnvelope: { payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(JSON.stringify(payload)).toString('base64'), signatures: [{ sig: 'c2ln', keyid: '' }] } };
      const stored = await fetch(new URL('-/npm/v1/attestations/lab-persist@1.1.0', first.url), { method: 'PUT', headers: { authorization: `Bearer ${first.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ predicateType, bundle }) });
      expect(stored.status).toBe(201);
    } finally {
      await first.stop();
    }

    const second = await startRegistry(options);
    try {
      expect(second.adminToken).toBe(adminToken);
      const manifest = (await view('lab-persist', second)) as Manifest;
      expect(manifest.versions).toEqual(['1.0.0', '1.1.0']);
      const latest = (await view('lab-persist@1.1.0', second)) as Manifest;
      expect(latest.dist.integrity).toBe(integrity);
      expect(latest.dist.tarball.startsWith(second.url)).toBe(true);
      expect(await sha512(latest.dist.tarball)).toBe(integrity);
      const attestations = (await (await fetch(new URL('-/npm/v1/attestations/lab-persist@1.1.0', second.url))).json()) as { attestations: Array<{ predicateType: string }> };
      expect(attestations.attestations.map((a) => a.predicateType)).toEqual([predicateType]);
      const published = await publishFromActions(await makePackage('lab-persist', '1.2.0'), { registry: second });
      expect(published.code, published.stderr).toBe(0);
    } finally {
      await second.stop();
    }
  });
});

/**
 * A registry that answers with something other than a package document: not JSON, JSON of the
 * wrong shape or types, an endless or oversized body, a body that breaks off. The publish path's
 * packument reader (packages/steps/src/publish/npm/registry.ts) turns each into a coded error and
 * never reads one as "this version is not published yet" (which would let the release publish);
 * the release verifier reports such an answer as a failed registry check. The answers come from a
 * lab service with chaos rules, and from routes that stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabService } from '@mcp-release/lab';
import { checkPublishedVersion, fetchPackument, type RetryPolicy, type Timing } from '../../packages/steps/src/publish/npm/registry.js';
import { verifyRelease } from '../../packages/steps/src/verify/release.js';
import { buildRelease, PACKAGE, startSigningLab } from '../../packages/steps/src/verify/testing.js';
import { caught, tempDir } from '../helpers/tmp.js';

const timing: Timing = { sleep: async () => undefined, now: () => 0 };
const noRetry: RetryPolicy = { retries: 0, minMs: 0, factor: 1, maxMs: 0 };
const SHA512 = 'a'.repeat(128);

let registry: LabService;
let url: string;
/** Requests the breaking route answered (the lab's log records finished answers only). */
let brokenOff = 0;

beforeAll(async () => {
  registry = new LabService({ name: 'registry-hostile' });
  // an answer that never ends, and one that claims to be huge
  registry.route('GET', '/endless', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    res.write('{"versions":');
    pump();
  });
  registry.route('GET', '/claims-huge', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(300 * 1024 * 1024) });
    res.write('{');
  });
  registry.route('GET', '/breaks-off', (req, res) => {
    brokenOff += 1;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"name":"breaks-off","versions":{');
    setTimeout(() => req.socket.destroy(), 20);
  });
  await registry.start(0);
  url = `${registry.url}/`;
});

afterAll(() => registry?.stop());

function answer(body: string, status = 200): void {
  registry.chaos.add({ route: '^/hostile-pkg$', count: 1, fault: { kind: 'status', status, body } });
}

describe('the packument reader against hostile answers', () => {
  it.each<[string, string]>([
    ['not JSON', 'this is not json'],
    ['an HTML login page', '<!doctype html><html><body>Sign in</body></html>'],
    ['null', 'null'],
    ['a list', '[]'],
    ['a number', '5'],
    ['a string', '"hostile-pkg"'],
    ['versions as a list', '{"name":"hostile-pkg","versions":["1.0.0"]}'],
    ['versions as text', '{"name":"hostile-pkg","versions":"1.0.0"}'],
    ['a version entry that is null', '{"versions":{"1.0.0":null}}'],
    ['an integrity that is a number', '{"versions":{"1.0.0":{"dist":{"integrity":5}}}}'],
    ['dist as a list', '{"versions":{"1.0.0":{"dist":["sha512-x"]}}}'],
    ['a dist-tag that is a number', '{"dist-tags":{"latest":1},"versions":{}}'],
    ['a name that is an object', '{"name":{"a":1},"versions":{}}'],
  ])('%s: NPM_PACKUMENT_INVALID, never "not published yet"', async (_what, body) => {
    answer(body);
    const err = await caught(() => checkPublishedVersion({ registry: url, name: 'hostile-pkg', version: '1.0.0', sha512: SHA512 }, timing, noRetry));
    expect(err).toMatchObject({ code: 'NPM_PACKUMENT_INVALID', hint: expect.stringContaining('MCP_RELEASE_NPM_REGISTRY') });
  });

  it('a document with extra fields of any type, and versions that are not semver, is still read', async () => {
    answer(JSON.stringify({ name: 'hostile-pkg', _id: 5, time: null, users: [1], versions: { 'not-semver': { dist: {} }, '1.0.0': { version: '1.0.0', dist: { integrity: 'sha1-x' }, scripts: 7 } } }));
    const state = await checkPublishedVersion({ registry: url, name: 'hostile-pkg', version: '1.0.0', sha512: SHA512 }, timing, noRetry);
    expect(state).toMatchObject({ state: 'different', registryVersion: '1.0.0' });
  });

  it('an endless answer is cut at the bound: NPM_PACKUMENT_TOO_LARGE', async () => {
    expect(await caught(() => fetchPackument(url, 'endless', undefined, { maxBytes: 4 * 1024 * 1024 }))).toMatchObject({ code: 'NPM_PACKUMENT_TOO_LARGE', message: expect.stringContaining('more than 4194304 bytes') });
  });

  it('an answer that declares more than the bound is refused before its body is read', async () => {
    expect(await caught(() => fetchPackument(url, 'claims-huge'))).toMatchObject({ code: 'NPM_PACKUMENT_TOO_LARGE', message: expect.stringContaining(`${300 * 1024 * 1024} bytes`) });
  });

  it('an answer that breaks off is a registry failure, retried, then NPM_REGISTRY_UNAVAILABLE', async () => {
    const retries: RetryPolicy = { retries: 2, minMs: 1, factor: 1, maxMs: 1 };
    const before = brokenOff;
    const err = await caught(() => checkPublishedVersion({ registry: url, name: 'breaks-off', version: '1.0.0', sha512: SHA512 }, timing, retries));
    expect(err).toMatchObject({ code: 'NPM_REGISTRY_UNAVAILABLE', message: expect.stringContaining('after 3 attempts') });
    expect(brokenOff - before).toBe(3);
  });
});

describe('the release verifier against hostile registry answers', () => {
  it.each<[string, string, string]>([
    ['null', 'null', 'VERIFY_REGISTRY_VERSION_MISSING'],
    ['not JSON', '<html>', 'VERIFY_REGISTRY_VERSION_MISSING'],
    ['a list', '[{"versions":{}}]', 'VERIFY_REGISTRY_VERSION_MISSING'],
    ['an integrity that is a number', JSON.stringify({ versions: { [PACKAGE.version]: { dist: { integrity: 5 } } } }), 'VERIFY_REGISTRY_INTEGRITY_MISMATCH'],
    ['a version entry that is null', JSON.stringify({ versions: { [PACKAGE.version]: null } }), 'VERIFY_REGISTRY_VERSION_MISSING'],
  ])('%s: a failed registry check, and the release is not verified', async (_what, body, code) => {
    const signing = await startSigningLab();
    try {
      const dir = await tempDir();
      await buildRelease(await signing.signer(), dir);
      registry.chaos.add({ route: `^/${PACKAGE.name.replace('/', '%2f')}$`, count: 1, fault: { kind: 'status', status: 200, body } });
      const result = await verifyRelease({
        folder: dir,
        policy: { repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', refPattern: 'refs/heads/main', issuer: signing.oidc.issuer },
        trustedRoot: signing.sigstore.trustedRoot,
        registry: url,
      });
      expect(result.checks.find((c) => c.name === 'registry')).toMatchObject({ status: 'failed', code });
      expect(result.status).toBe('not-verified');
    } finally {
      await signing.stop();
    }
  });
});

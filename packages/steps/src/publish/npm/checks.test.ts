import { describe, expect, it } from 'vitest';
import { newManifest, npmIntegrity, type Artifact } from '@mcp-release/manifest';
import { exec } from '@mcp-release/pipeline';
import semver from 'semver';
import { TEST_PLAN } from '../../../../../test/helpers/context.js';
import { caught } from '../../../../../test/helpers/tmp.js';
import { attestationsUrl } from './attest.js';
import { assertNpmVersion, checkNpmCli, MIN_NPM_VERSION, npmPublishArgs, npmPublishEnv, onlyStrippedVariable, translatePublishFailure } from './cli.js';
import { exchangeUrl, refusalCause, workflowFileOf } from './oidc.js';
import { npmPublishSettings, npmReleases } from './publish.js';
import { backoff, distTagFor, withRegistry, escapeName, nerfDart, npmAudience, registryFromEnv, versionState, withRetries, TransientError, type Packument } from './registry.js';
import { renderPublishMarkdown } from './steps.js';
import { fakeTiming } from './testing.js';

const REGISTRY = 'http://127.0.0.1:4873/';
const hexA = 'aa'.repeat(64);
const hexB = 'bb'.repeat(64);

function packument(versions: Record<string, string>): Packument {
  return { name: 'pkg', versions: Object.fromEntries(Object.entries(versions).map(([v, hex]) => [v, { version: v, dist: { integrity: npmIntegrity(hex) } }])) };
}

describe('the npm CLI', () => {
  it(`needs npm ${MIN_NPM_VERSION} or newer`, async () => {
    expect(assertNpmVersion('11.5.1\n')).toBe('11.5.1');
    expect(assertNpmVersion('11.19.1')).toBe('11.19.1');
    for (const old of ['11.5.0', '10.9.2', '9.8.1']) {
      const err = await caught(async () => assertNpmVersion(old));
      expect(err.code).toBe('NPM_TOO_OLD');
      expect(err.hint).toMatch(/npm install -g npm@latest/);
    }
    expect((await caught(async () => assertNpmVersion('not a version'))).code).toBe('NPM_VERSION_UNREADABLE');
  });

  it('the npm on this machine passes the check', async () => {
    const version = await checkNpmCli(exec, process.env, process.cwd());
    expect(semver.gte(version, MIN_NPM_VERSION)).toBe(true);
  });
});

describe('exact versions against the packument', () => {
  it('1.0.1 is not 1.0.10, either way round', () => {
    expect(versionState(packument({ '1.0.10': hexB }), '1.0.1', hexA)).toEqual({ state: 'absent', packageExists: true });
    expect(versionState(packument({ '1.0.1': hexB }), '1.0.10', hexA)).toEqual({ state: 'absent', packageExists: true });
    expect(versionState(packument({ '1.0.1': hexA, '1.0.10': hexB }), '1.0.1', hexA)).toEqual({ state: 'same', integrity: npmIntegrity(hexA) });
    expect(versionState(packument({ '1.0.1': hexB, '1.0.10': hexA }), '1.0.1', hexA)).toMatchObject({ state: 'different', registryVersion: '1.0.1' });
  });

  it('no packument is an absent package; build metadata does not make another version', () => {
    expect(versionState(undefined, '1.0.0', hexA)).toEqual({ state: 'absent', packageExists: false });
    expect(versionState(packument({ '1.0.0+build.1': hexB }), '1.0.0+build.2', hexA)).toMatchObject({ state: 'different', registryVersion: '1.0.0+build.1' });
    expect(versionState(packument({ '1.0.0-rc.1': hexA }), '1.0.0', hexA)).toEqual({ state: 'absent', packageExists: true });
  });

  it('reads the sha512 among several integrity entries', () => {
    const doc: Packument = { versions: { '1.0.0': { dist: { integrity: `sha1-abc ${npmIntegrity(hexA)}` } } } };
    expect(versionState(doc, '1.0.0', hexA).state).toBe('same');
    const noSha512: Packument = { versions: { '1.0.0': { dist: { shasum: 'abc' } } } };
    expect(versionState(noSha512, '1.0.0', hexA)).toMatchObject({ state: 'different', integrity: undefined });
  });
});

describe('settings', () => {
  it('the registry: MCP_RELEASE_NPM_REGISTRY, else what npm itself is configured with, as a plain URL', async () => {
    expect((await caught(async () => registryFromEnv({}))).code).toBe('NPM_REGISTRY_UNKNOWN');
    const npmSays = await withRegistry({ exec, env: { ...process.env, MCP_RELEASE_NPM_REGISTRY: '', npm_config_registry: 'http://127.0.0.1:4873/' } }, process.cwd());
    expect(npmSays.MCP_RELEASE_NPM_REGISTRY).toBe('http://127.0.0.1:4873/');
    expect(registryFromEnv({ MCP_RELEASE_NPM_REGISTRY: 'http://127.0.0.1:4873' })).toBe(REGISTRY);
    expect((await caught(async () => registryFromEnv({ MCP_RELEASE_NPM_REGISTRY: 'not a url' }))).code).toBe('NPM_REGISTRY_INVALID');
    expect((await caught(async () => registryFromEnv({ MCP_RELEASE_NPM_REGISTRY: 'https://user:secret@registry.example.invalid/' }))).code).toBe('NPM_REGISTRY_INVALID');
    expect(npmAudience('http://127.0.0.1:4873/')).toBe('npm:127.0.0.1');
    expect(nerfDart('http://127.0.0.1:4873/npm/')).toBe('//127.0.0.1:4873/npm/');
  });

  it('names and URLs as npm escapes them', () => {
    expect(escapeName('@scope/pkg')).toBe('@scope%2fpkg');
    expect(exchangeUrl('http://127.0.0.1:4873/npm/', '@scope/pkg')).toBe('http://127.0.0.1:4873/-/npm/v1/oidc/token/exchange/package/@scope%2fpkg');
    expect(attestationsUrl(REGISTRY, '@scope/pkg', '1.0.0')).toBe('http://127.0.0.1:4873/-/npm/v1/attestations/@scope%2fpkg@1.0.0');
    expect(workflowFileOf('o/r/.github/workflows/release.yml@refs/tags/v1')).toBe('release.yml');
    expect(workflowFileOf('garbage')).toBeUndefined();
  });

  it('dist-tags: the prerelease tag for prereleases, latest otherwise', () => {
    expect(distTagFor('1.0.0')).toBe('latest');
    expect(distTagFor('1.0.0-rc.1')).toBe('next');
    expect(distTagFor('1.0.0-beta.2', 'beta')).toBe('beta');
  });

  it('provenance: npm\'s own on the public Sigstore, the toolkit\'s in the lab, none when the policy says so', () => {
    const policy = { version: 1 as const, packages: [] };
    expect(npmPublishSettings(policy, { MCP_RELEASE_NPM_REGISTRY: REGISTRY })).toEqual({ registry: REGISTRY, access: 'public', prereleaseTag: 'next', provenance: 'npm', waitSeconds: 300 });
    expect(npmPublishSettings(policy, { MCP_RELEASE_NPM_REGISTRY: REGISTRY, MCP_RELEASE_FULCIO_URL: 'http://127.0.0.1:1' }).provenance).toBe('toolkit');
    const off = { ...policy, publish: { npm: { provenance: false, access: 'restricted' as const, prereleaseTag: 'beta', waitSeconds: 10 } } };
    expect(npmPublishSettings(off, { MCP_RELEASE_NPM_REGISTRY: REGISTRY })).toMatchObject({ provenance: 'off', access: 'restricted', prereleaseTag: 'beta', waitSeconds: 10 });
    const args = { tarball: '/r/p.tgz', access: 'public' as const, tag: 'latest', registry: REGISTRY };
    expect(npmPublishArgs({ ...args, provenance: true })).toContain('--provenance');
    expect(npmPublishArgs({ ...args, provenance: false })).not.toContain('--provenance');
    expect(npmPublishArgs({ ...args, provenance: false })).toEqual(expect.arrayContaining(['publish', '/r/p.tgz', '--access', 'public', '--tag', 'latest', '--registry', REGISTRY, '--fetch-retries=0']));
  });

  it('bounded exponential backoff', () => {
    const policy = { retries: 5, minMs: 1000, factor: 2, maxMs: 8000 };
    expect([1, 2, 3, 4, 5].map((n) => backoff(policy, n))).toEqual([1000, 2000, 4000, 8000, 8000]);
  });

  it('retries transient failures only', async () => {
    const timing = fakeTiming();
    let calls = 0;
    const value = await withRetries({ retries: 3, minMs: 10, factor: 2, maxMs: 100 }, timing, async () => {
      calls += 1;
      if (calls < 3) throw new TransientError('HTTP 502', 502);
      return 'ok';
    }, () => {
      throw new Error('not reached');
    });
    expect(value).toBe('ok');
    expect(timing.slept).toEqual([10, 20]);
    let final = 0;
    await expect(withRetries({ retries: 3, minMs: 10, factor: 2, maxMs: 100 }, fakeTiming(), async () => {
      final += 1;
      throw new Error('a 4xx');
    }, () => {
      throw new Error('not reached');
    })).rejects.toThrow('a 4xx');
    expect(final).toBe(1);
  });
});

describe('the environment npm publishes with', () => {
  it('carries no token: token variables are dropped, the registry and provenance are the toolkit\'s', () => {
    const env = npmPublishEnv(
      { PATH: '/bin', NPM_TOKEN: 'npm_x', NODE_AUTH_TOKEN: 'npm_y', NPM_ID_TOKEN: 'ey', NPM_CONFIG_REGISTRY: 'http://elsewhere.invalid/', npm_config_provenance: 'true', 'npm_config_//elsewhere.invalid/:_authToken': 'npm_z', GITHUB_ACTIONS: 'true' },
      { registry: REGISTRY, provenanceOff: true },
    );
    expect(env).toEqual({ PATH: '/bin', GITHUB_ACTIONS: 'true', npm_config_registry: REGISTRY, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', NPM_CONFIG_PROVENANCE: 'false', npm_config_fetch_timeout: '60000' });
    expect(npmPublishEnv({ NPM_CONFIG_PROVENANCE: 'false' }, { registry: REGISTRY, provenanceOff: false }).NPM_CONFIG_PROVENANCE).toBeUndefined();
    // A fetch timeout the user set is kept.
    expect(npmPublishEnv({ NPM_CONFIG_FETCH_TIMEOUT: '5000' }, { registry: REGISTRY, provenanceOff: false })).toMatchObject({ NPM_CONFIG_FETCH_TIMEOUT: '5000' });
    expect(npmPublishEnv({ NPM_CONFIG_FETCH_TIMEOUT: '5000' }, { registry: REGISTRY, provenanceOff: false }).npm_config_fetch_timeout).toBeUndefined();
  });

  it('refuses a token configured for the registry through the environment', async () => {
    for (const key of ['npm_config_//127.0.0.1:4873/:_authToken', 'NPM_CONFIG__AUTH', 'npm_config_//127.0.0.1:4873/:_password']) {
      const err = await caught(async () => npmPublishEnv({ [key]: 'secret-value' }, { registry: REGISTRY, provenanceOff: true }));
      expect(err.code).toBe('NPM_TOKEN_CONFIGURED');
      expect(err.message).toContain(key);
      expect(err.message).not.toContain('secret-value');
    }
  });

  it('a ${NODE_AUTH_TOKEN} placeholder in an .npmrc is harmless, a literal token is not', () => {
    expect(onlyStrippedVariable('${NODE_AUTH_TOKEN}')).toBe(true);
    expect(onlyStrippedVariable('"${NPM_TOKEN}"')).toBe(true);
    expect(onlyStrippedVariable('${OTHER}')).toBe(false);
    expect(onlyStrippedVariable('npm_abc')).toBe(false);
  });
});

describe('npm publish failures', () => {
  const spec = 'pkg@1.0.0';
  const run = (stderr: string, stdout = ''): Parameters<typeof translatePublishFailure>[0] => ({ stdout, stderr, exitCode: 1, timedOut: false });

  it('"cannot publish over" (no code) and E409 mean the version exists', () => {
    const over = translatePublishFailure(run('npm error You cannot publish over the previously published versions: 1.0.0.\n'), spec, REGISTRY);
    expect(over.kind).toBe('exists');
    expect(over.error.code).toBe('NPM_PUBLISH_VERSION_EXISTS');
    const json = '{\n  "error": {\n    "code": "E409",\n    "summary": "409 Conflict - PUT http://127.0.0.1:4873/pkg - this package is already present",\n    "detail": ""\n  }\n}\n';
    expect(translatePublishFailure(run('npm error code E409\n', json), spec, REGISTRY).kind).toBe('exists');
  });

  it('5xx and network errors are retryable, 4xx are final', () => {
    expect(translatePublishFailure(run('npm error code E502\n'), spec, REGISTRY).kind).toBe('retryable');
    expect(translatePublishFailure(run('npm error code ECONNRESET\nnpm error network socket hang up\n'), spec, REGISTRY).kind).toBe('retryable');
    for (const code of ['E400', 'E401', 'E403', 'E404', 'E422', 'EOTP']) expect(translatePublishFailure(run(`npm error code ${code}\n`), spec, REGISTRY).kind).toBe('fatal');
    expect(translatePublishFailure({ stdout: '', stderr: '', exitCode: null, timedOut: true }, spec, REGISTRY).kind).toBe('retryable');
  });
});

describe('the release\'s npm tarballs', () => {
  const tarball = (pathName: string, name: string, version: string): Artifact => ({ path: pathName, kind: 'npm-tarball', platform: 'any', size: 1, sha256: '00'.repeat(32), sha512: hexA, producedBy: 'build-npm', meta: { name, version } });
  const manifest = (artifacts: Artifact[]) => {
    const m = newManifest({ ...structuredClone(TEST_PLAN), packages: [{ name: 'pkg', version: '1.0.0-rc.1', path: 'packages/pkg' }] });
    m.artifacts = artifacts;
    return m;
  };

  it('takes the version from the plan and the digest from the manifest', () => {
    expect(npmReleases(manifest([tarball('pkg-1.0.0-rc.1.tgz', 'pkg', '1.0.0-rc.1')]), 'next')).toEqual([{ name: 'pkg', version: '1.0.0-rc.1', path: 'pkg-1.0.0-rc.1.tgz', sha512: hexA, integrity: npmIntegrity(hexA), distTag: 'next' }]);
  });

  it('refuses a missing, mismatched or unplanned tarball', async () => {
    expect((await caught(async () => npmReleases(manifest([]), 'next'))).code).toBe('NPM_TARBALL_MISSING');
    expect((await caught(async () => npmReleases(manifest([tarball('pkg-1.0.0.tgz', 'pkg', '1.0.0')]), 'next'))).code).toBe('NPM_TARBALL_PLAN_MISMATCH');
    expect((await caught(async () => npmReleases(manifest([tarball('pkg-1.0.0-rc.1.tgz', 'pkg', '1.0.0-rc.1'), tarball('other-1.0.0.tgz', 'other', '1.0.0')]), 'next'))).code).toBe('NPM_TARBALL_UNPLANNED');
  });

  it('the summary line names the outcome, tag and integrity', () => {
    const md = renderPublishMarkdown({ registry: REGISTRY, provenance: 'toolkit' }, [
      { name: 'pkg', version: '1.0.0', integrity: npmIntegrity(hexA), outcome: 'published', distTag: 'latest', attestation: 'stored' },
      { name: 'other', version: '2.0.0', integrity: npmIntegrity(hexB), outcome: 'already-published', distTag: 'latest', attestation: 'present' },
    ]);
    expect(md.split('\n')).toEqual([
      `**npm** (${REGISTRY}, trusted publishing):`,
      `- \`pkg@1.0.0\` published, dist-tag \`latest\`, provenance stored, \`${npmIntegrity(hexA)}\``,
      `- \`other@2.0.0\` already published (left as it was), dist-tag \`latest\`, provenance already stored, \`${npmIntegrity(hexB)}\``,
    ]);
  });
});

describe('refusals without a reason code', () => {
  it('a 404 for a package the registry does not have is the bootstrap case', () => {
    expect(refusalCause({ name: 'pkg', refused: { status: 404, message: 'Not found' }, claims: {}, bindings: [], packageExists: false, now: new Date() }).cause).toBe('package-not-found');
  });
});

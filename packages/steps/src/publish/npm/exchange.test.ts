import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CLAIMS, type GithubClaims } from '@mcp-release/lab';
import { caught } from '../../../../../test/helpers/tmp.js';
import { diagnoseRefusal, exchangeIdToken, preflightExchange, readPublisherClaims, type PreflightOptions } from './oidc.js';
import { publishNpm } from './publish.js';
import { fakeTiming, npmRelease, REPOSITORY, startPublishLab, type PublishLab } from './testing.js';

let lab: PublishLab;
/** A package with a trusted publisher (release.yml, environment release) and a first version. */
let bound: string;

beforeAll(async () => {
  lab = await startPublishLab();
  bound = lab.bound('lab-oidc');
  await lab.bootstrap(bound);
});
afterAll(async () => {
  await lab?.stop();
});
afterEach(() => {
  lab.registry.chaos.clear();
  lab.oidc.claims = { ...DEFAULT_CLAIMS, sha: lab.oidc.claims.sha } as GithubClaims;
});

function preflight(name: string, extra: Partial<PreflightOptions> = {}): Promise<{ token: string }> {
  return preflightExchange({ env: lab.env(), registry: lab.registry.url, name, bindings: lab.bindings, packageExists: true, now: new Date(), timing: fakeTiming(), ...extra });
}

const refusals: Array<{ what: string; claims: Partial<GithubClaims>; code: string; message: RegExp; hint: RegExp }> = [
  {
    what: 'another workflow file',
    claims: { workflow_ref: `${REPOSITORY}/.github/workflows/ci.yml@refs/heads/main` },
    code: 'NPM_OIDC_WRONG_WORKFLOW',
    message: /wrong workflow file \(the trusted publisher of lab-oidc-\d+ is repository mcp-release\/vmaf-mcp, workflow release\.yml, environment release; the ID token is from repository mcp-release\/vmaf-mcp, workflow ci\.yml, environment release\)$/,
    hint: /publish from \.github\/workflows\/release\.yml; if ci\.yml is the right one, change/,
  },
  {
    what: 'another environment',
    claims: { environment: 'staging' },
    code: 'NPM_OIDC_WRONG_ENVIRONMENT',
    message: /wrong GitHub environment \(.*environment release; .*environment staging\)$/,
    hint: /jobs\.<job>\.environment: release/,
  },
  { what: 'no environment', claims: { environment: undefined }, code: 'NPM_OIDC_WRONG_ENVIRONMENT', message: /environment release; .*, no environment\)$/, hint: /environment: release/ },
  {
    what: 'a fork',
    claims: { repository: 'someone/fork', repository_owner: 'someone', workflow_ref: 'someone/fork/.github/workflows/release.yml@refs/heads/main' },
    code: 'NPM_OIDC_WRONG_REPOSITORY',
    message: /wrong repository \(.*repository mcp-release\/vmaf-mcp, .*the ID token is from repository someone\/fork/,
    hint: /publish from mcp-release\/vmaf-mcp \(a fork or a copy of the workflow cannot publish\)/,
  },
  { what: 'a self-hosted runner', claims: { runner_environment: 'self-hosted' }, code: 'NPM_OIDC_SELF_HOSTED_RUNNER', message: /self-hosted runner/, hint: /GitHub-hosted runner/ },
];

describe('the preflight exchange names why the registry refused it', () => {
  for (const c of refusals) {
    it(`an ID token from ${c.what}: ${c.code}`, async () => {
      lab.oidc.claims = { ...lab.oidc.claims, ...c.claims } as GithubClaims;
      const err = await caught(() => preflight(bound));
      expect(err.code).toBe(c.code);
      expect(err.message).toMatch(/^the registry refused to exchange this job's ID token for a publish token for lab-oidc-\d+/);
      expect(err.message).toMatch(c.message);
      expect(err.hint).toMatch(c.hint);
      expect(err.details?.[0]).toMatch(/^registry answer: HTTP 404 OIDC token exchange error - package not found/);
      expect(lab.registry.exchanges.at(-1)).toMatchObject({ package: bound, status: 404 });
    });
  }

  it('a package without a trusted publisher, on the registry or in the policy too', async () => {
    const loose = `lab-loose-${Date.now().toString(36)}`;
    await lab.bootstrap(loose);
    const neither = await caught(() => preflight(loose));
    expect(neither.code).toBe('NPM_OIDC_NO_TRUSTED_PUBLISHER');
    expect(neither.message).toContain(`${loose} has no trusted publisher (none on the registry, none in the policy)`);
    expect(neither.hint).toContain(`add a trusted publisher to ${loose} on the registry (package settings → Trusted publisher: repository mcp-release/vmaf-mcp, workflow release.yml, environment release)`);
    const policyOnly = await caught(() => preflight(loose, { bindings: [...lab.bindings, { package: loose, repository: REPOSITORY, workflow: 'release.yml' }] }));
    expect(policyOnly.code).toBe('NPM_OIDC_NO_TRUSTED_PUBLISHER');
    expect(policyOnly.message).toContain(`${loose} has no trusted publisher on the registry`);
  });

  it('a package that does not exist yet needs its first version published by hand', async () => {
    const fresh = lab.bound('lab-fresh');
    const err = await caught(() => preflight(fresh, { packageExists: false }));
    expect(err.code).toBe('NPM_OIDC_PACKAGE_NOT_FOUND');
    expect(err.message).toContain(`${fresh} does not exist on the registry yet, and trusted publishing cannot create a package`);
    expect(err.hint).toMatch(/^bootstrap the package once: publish its first version by hand with a short-lived granular token/);
  });

  it('an expired ID token and one for another audience', async () => {
    const expired = await lab.oidc.mint(lab.registry.audience, { expiresIn: -120 });
    const refusedExpired = await exchangeIdToken({ registry: lab.registry.url, name: bound, idToken: expired });
    expect('refused' in refusedExpired).toBe(true);
    if (!('refused' in refusedExpired)) return;
    const base = { name: bound, registry: lab.registry.url, bindings: lab.bindings, packageExists: true, now: new Date() };
    const e1 = diagnoseRefusal({ ...base, refused: refusedExpired.refused, claims: readPublisherClaims(expired) });
    expect(e1.code).toBe('NPM_OIDC_TOKEN_EXPIRED');
    expect(e1.message).toMatch(/the ID token is expired \(it expired at \d{4}-\d\d-\d\dT/);
    expect(e1.hint).toMatch(/re-run the job/);
    // the same answer without the registry's reason code: told from the token's exp
    const e1b = diagnoseRefusal({ ...base, refused: { status: 401, message: 'Unauthorized' }, claims: readPublisherClaims(expired) });
    expect(e1b.code).toBe('NPM_OIDC_TOKEN_EXPIRED');

    const elsewhere = await lab.oidc.mint('npm:registry.example.invalid');
    const refusedAudience = await exchangeIdToken({ registry: lab.registry.url, name: bound, idToken: elsewhere });
    if (!('refused' in refusedAudience)) throw new Error('the exchange should be refused');
    const e2 = diagnoseRefusal({ ...base, refused: refusedAudience.refused, claims: readPublisherClaims(elsewhere) });
    expect(e2.code).toBe('NPM_OIDC_WRONG_AUDIENCE');
    expect(e2.message).toContain(`audience "npm:registry.example.invalid" is not the one this registry expects (npm:127.0.0.1 requested)`);
  });

  it('outside GitHub Actions, without the id-token permission, and with a request token the service refuses', async () => {
    const outside = await caught(() => preflight(bound, { env: lab.env({ GITHUB_ACTIONS: undefined }) }));
    expect(outside.code).toBe('NPM_OIDC_NOT_IN_ACTIONS');
    expect(outside.hint).toMatch(/publish from the release workflow on GitHub; to rehearse on this machine, run against the lab/);
    const noPermission = await caught(() => preflight(bound, { env: lab.env({ ACTIONS_ID_TOKEN_REQUEST_URL: undefined, ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined }) }));
    expect(noPermission.code).toBe('NPM_OIDC_NO_PERMISSION');
    expect(noPermission.hint).toMatch(/permissions: id-token: write/);
    const stale = await caught(() => preflight(bound, { env: lab.env({ ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'stale' }) }));
    expect(stale.code).toBe('NPM_OIDC_TOKEN_REFUSED');
    expect(stale.message).toMatch(/HTTP 401/);
  });

  it('a registry that gives no reason code: the cause is told from the token and the policy', async () => {
    const plain = { kind: 'status' as const, status: 404, body: '{"message":"OIDC token exchange error - package not found"}' };
    lab.oidc.claims = { ...lab.oidc.claims, workflow_ref: `${REPOSITORY}/.github/workflows/ci.yml@refs/heads/main` };
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: plain });
    const workflow = await caught(() => preflight(bound));
    expect(workflow.code).toBe('NPM_OIDC_WRONG_WORKFLOW');
    expect(workflow.details?.[0]).toBe('registry answer: HTTP 404 OIDC token exchange error - package not found');

    // the token matches the policy: the registry's binding is what differs
    lab.oidc.claims = { ...DEFAULT_CLAIMS, sha: lab.oidc.claims.sha } as GithubClaims;
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: plain });
    const differs = await caught(() => preflight(bound));
    expect(differs.code).toBe('NPM_OIDC_BINDING_DIFFERS');
    expect(differs.hint).toMatch(/make the package's "Trusted publisher" settings on the registry match trustedPublishers in policies\/release-policy\.yaml/);
  });

  it('a failing exchange endpoint is retried with backoff; one that keeps failing stops the release', async () => {
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'status', status: 503 } });
    const timing = fakeTiming();
    const { token } = await preflight(bound, { timing });
    expect(token).toMatch(/^ey/);
    expect(timing.slept).toEqual([1000]);

    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 5, fault: { kind: 'reset' } });
    const err = await caught(() => preflight(bound, { retry: { retries: 2, minMs: 10, factor: 2, maxMs: 1000 } }));
    expect(err.code).toBe('NPM_OIDC_EXCHANGE_UNAVAILABLE');
    expect(err.message).toMatch(/failed 3 times/);
  });
});

describe('a refused exchange stops publish-npm before npm runs', () => {
  it('the wrong workflow: its cause, no upload, nothing published', async () => {
    const [tgz] = await lab.pack({ name: bound, version: '1.0.0' });
    lab.oidc.claims = { ...lab.oidc.claims, workflow_ref: `${REPOSITORY}/.github/workflows/ci.yml@refs/heads/main` };
    const before = lab.registry.log.length;
    const err = await caught(async () => publishNpm(await npmRelease(lab, [tgz]), { timing: fakeTiming() }));
    expect(err.code).toBe('NPM_OIDC_WRONG_WORKFLOW');
    expect(lab.registry.log.slice(before).filter((r) => r.method === 'PUT')).toEqual([]);
    expect((await lab.packument(bound))?.versions?.['1.0.0']).toBeUndefined();
  });

  it('npm\'s own exchange refused after ours was granted: ENEEDAUTH explained, nothing published', async () => {
    const [tgz] = await lab.pack({ name: bound, version: '1.0.1' });
    // the first exchange (the toolkit's) passes, the second (npm's) is refused
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'delay', ms: 1 } });
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'status', status: 404, body: '{"message":"OIDC token exchange error - package not found (binding removed)"}' } });
    const timing = fakeTiming();
    const err = await caught(async () => publishNpm(await npmRelease(lab, [tgz]), { timing }));
    expect(err.code).toBe('NPM_PUBLISH_NO_CREDENTIAL');
    expect(err.message).toContain('its own ID-token exchange failed (OIDC token exchange error - package not found (binding removed))');
    expect(timing.slept).toEqual([]);
    expect((await lab.packument(bound))?.versions?.['1.0.1']).toBeUndefined();
  });

  it('npm\'s own exchange answered 503: retried, then published', async () => {
    const [tgz] = await lab.pack({ name: bound, version: '1.0.2' });
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'delay', ms: 1 } });
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'status', status: 503 } });
    const timing = fakeTiming();
    const result = await publishNpm(await npmRelease(lab, [tgz]), { timing });
    expect(result.packages[0]?.outcome).toBe('published');
    expect(timing.slept).toEqual([1000]);
    expect((await lab.packument(bound))?.versions?.['1.0.2']?.dist?.integrity).toBe(tgz.integrity);
  });
});

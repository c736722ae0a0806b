import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Artifact } from '@mcp-release/manifest';
import { renderSummary, type Step } from '@mcp-release/pipeline';
import { caught } from '../../../../../test/helpers/tmp.js';
import { runSteps } from '../../../../../test/helpers/context.js';
import type { ReleaseOptions } from '../../options.js';
import { provenanceStep } from '../../provenance/provenance-step.js';
import { NPM_PROVENANCE_FILE } from '../../provenance/statement.js';
import { signStep } from '../../sign.js';
import { publishNpm } from './publish.js';
import { createPublishNpmStep, createWaitRegistryStep } from './steps.js';
import { fakeTiming, npmRelease, startPublishLab, type Packed, type PublishLab } from './testing.js';

let lab: PublishLab;

beforeAll(async () => {
  lab = await startPublishLab();
});
afterAll(async () => {
  await lab?.stop();
});
afterEach(() => {
  lab.registry.chaos.clear();
});

const puts = (name: string): Array<{ status: unknown }> => lab.registry.log.filter((r) => r.method === 'PUT' && r.path === `/${name}`);
const integrityOf = async (name: string, version: string): Promise<string | undefined> => (await lab.packument(name))?.versions?.[version]?.dist?.integrity;

describe('publish-npm through trusted publishing (real npm, lab registry)', () => {
  it('publishes through the OIDC exchange with no token anywhere; the wait step sees it; a re-run is already-published', async () => {
    const name = lab.bound('lab-pub');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.0.0' });
    // setup-node's placeholder line, with a real (admin) token in the variable: it must not reach npm
    const npmrc = await lab.npmrc([`//${new URL(lab.registry.url).host}/:_authToken=\${NODE_AUTH_TOKEN}`]);
    const env = lab.env({ npm_config_userconfig: npmrc, NODE_AUTH_TOKEN: lab.registry.adminToken, NPM_TOKEN: lab.registry.adminToken });
    const ctx = await npmRelease(lab, [tgz], { env });
    const exchanges = lab.registry.exchanges.length;
    const timing = fakeTiming();

    const run = await runSteps([createPublishNpmStep({ timing }), createWaitRegistryStep({ timing })], ctx);
    expect(run.error).toBeUndefined();
    expect(run.ok).toBe(true);
    const data = ctx.manifest.steps['publish-npm']?.data as { packages: unknown[]; markdown: string };
    expect(data.packages).toEqual([{ name, version: '1.0.0', integrity: tgz.integrity, outcome: 'published', distTag: 'latest' }]);
    expect(data.markdown).toContain(`- \`${name}@1.0.0\` published, dist-tag \`latest\`, \`${tgz.integrity}\``);
    expect(renderSummary('Release', run, ctx.manifest)).toContain(data.markdown);
    // our preflight and npm's own exchange, both granted
    expect(lab.registry.exchanges.slice(exchanges).map((e) => [e.package, e.status])).toEqual([
      [name, 201],
      [name, 201],
    ]);
    expect(puts(name).map((r) => r.status)).toEqual([201, 201]);
    const packument = await lab.packument(name);
    expect(packument?.versions?.['1.0.0']?.dist?.integrity).toBe(tgz.integrity);
    expect(packument?.['dist-tags']?.latest).toBe('1.0.0');
    expect(ctx.manifest.steps['wait-registry']?.data?.packages).toEqual([{ name, version: '1.0.0', integrity: tgz.integrity, distTag: 'latest', taggedVersion: '1.0.0', polls: 1 }]);
    expect(timing.slept).toEqual([]);

    // a new run of the same release (a new manifest): nothing is exchanged or uploaded again
    const again = await npmRelease(lab, [tgz], { env });
    const before = lab.registry.exchanges.length;
    const rerun = await publishNpm(again, { timing });
    expect(rerun.packages).toEqual([{ name, version: '1.0.0', integrity: tgz.integrity, outcome: 'already-published', distTag: 'latest' }]);
    expect(lab.registry.exchanges.length).toBe(before);
    expect(puts(name)).toHaveLength(2);
  });

  it('fails loudly when the registry holds the version with other contents, and changes nothing', async () => {
    const name = lab.bound('lab-conflict');
    await lab.bootstrap(name);
    // two packs: the same name and version make the same file name
    const [first] = await lab.pack({ name, version: '1.0.0', seed: 'first' });
    const [other] = await lab.pack({ name, version: '1.0.0', seed: 'second' });
    expect(other.integrity).not.toBe(first.integrity);
    expect((await runSteps([createPublishNpmStep()], await npmRelease(lab, [first]))).ok).toBe(true);
    const putsBefore = puts(name).length;

    const ctx = await npmRelease(lab, [other]);
    const err = await caught(() => publishNpm(ctx, { timing: fakeTiming() }));
    expect(err.code).toBe('NPM_VERSION_CONFLICT');
    expect(err.message).toContain(`${name}@1.0.0 is already on the registry with other contents (registry ${first.integrity}, this release ${other.integrity})`);
    expect(err.hint).toMatch(/never be replaced/);
    expect(puts(name)).toHaveLength(putsBefore);
    expect(await integrityOf(name, '1.0.0')).toBe(first.integrity);
  });

  it('compares exact versions: 1.0.1 on the registry is not 1.0.10, nor the other way round (a scoped name)', async () => {
    const name = lab.bound('@lab/exact');
    await lab.bootstrap(name);
    const [v101, v1010] = await lab.pack({ name, version: '1.0.1' }, { name, version: '1.0.10' });
    const timing = fakeTiming();
    const a = await publishNpm(await npmRelease(lab, [v101]), { timing });
    expect(a.packages[0]?.outcome).toBe('published');
    const b = await publishNpm(await npmRelease(lab, [v1010]), { timing });
    expect(b.packages[0]?.outcome).toBe('published');
    // each re-run finds its own version, not the other's (whose integrity differs)
    const c = await publishNpm(await npmRelease(lab, [v101]), { timing });
    expect(c.packages[0]).toMatchObject({ version: '1.0.1', outcome: 'already-published', integrity: v101.integrity });
    const packument = await lab.packument(name);
    expect(Object.keys(packument?.versions ?? {}).sort()).toEqual(['0.0.1', '1.0.1', '1.0.10']);
    expect(packument?.versions?.['1.0.10']?.dist?.integrity).toBe(v1010.integrity);
  });

  it('publishes a prerelease under next and leaves latest where it was', async () => {
    const name = lab.bound('lab-pre');
    await lab.bootstrap(name, '1.0.0');
    const [rc] = await lab.pack({ name, version: '2.0.0-rc.1' });
    const ctx = await npmRelease(lab, [rc]);
    const run = await runSteps([createPublishNpmStep({ timing: fakeTiming() }), createWaitRegistryStep({ timing: fakeTiming() })], ctx);
    expect(run.error).toBeUndefined();
    expect(ctx.manifest.steps['publish-npm']?.data?.packages).toEqual([{ name, version: '2.0.0-rc.1', integrity: rc.integrity, outcome: 'published', distTag: 'next' }]);
    expect((await lab.packument(name))?.['dist-tags']).toEqual({ latest: '1.0.0', next: '2.0.0-rc.1' });
  });
});

describe('publish-npm: nothing is published after a failed check', () => {
  it('a refused exchange for the second package stops the release before the first is published', async () => {
    const good = lab.bound('lab-pair');
    const unbound = `lab-unbound-${Date.now().toString(36)}`;
    await lab.bootstrap(good);
    await lab.bootstrap(unbound);
    const ctx = await npmRelease(lab, await lab.pack({ name: good, version: '1.0.0' }, { name: unbound, version: '1.0.0' }));
    const run = await runSteps([createPublishNpmStep({ timing: fakeTiming() })], ctx);
    expect(run.ok).toBe(false);
    expect(ctx.manifest.steps['publish-npm']?.error?.code).toBe('NPM_OIDC_NO_TRUSTED_PUBLISHER');
    expect(await integrityOf(good, '1.0.0')).toBeUndefined();
    expect(await integrityOf(unbound, '1.0.0')).toBeUndefined();
  });

  it('a registry that keeps failing the exact-version check stops the release after bounded retries', async () => {
    const name = lab.bound('lab-flaky');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.0.0' });
    lab.registry.chaos.add({ route: `^/${name}$`, method: 'GET', count: 3, fault: { kind: 'reset' } });
    const timing = fakeTiming();
    const err = await caught(async () => publishNpm(await npmRelease(lab, [tgz]), { timing, retry: { retries: 2, minMs: 100, factor: 2, maxMs: 1000 } }));
    expect(err.code).toBe('NPM_REGISTRY_UNAVAILABLE');
    expect(err.message).toMatch(new RegExp(`could not read ${name} from .* after 3 attempts`));
    expect(timing.slept).toEqual([100, 200]);
    expect(puts(name)).toHaveLength(1);
    expect(await integrityOf(name, '1.0.0')).toBeUndefined();
  });

  it('a tarball changed after build-npm recorded it is not published', async () => {
    const name = lab.bound('lab-tamper');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.0.0' });
    const ctx = await npmRelease(lab, [tgz]);
    const file = path.join(ctx.releaseDir, path.basename(tgz.file));
    const bytes = await readFile(file);
    bytes.writeUInt8((bytes.at(-1) as number) ^ 0xff, bytes.length - 1);
    await writeFile(file, bytes);
    const err = await caught(() => publishNpm(ctx, { timing: fakeTiming() }));
    expect(err.code).toBe('NPM_TARBALL_CHANGED');
    expect(await integrityOf(name, '1.0.0')).toBeUndefined();
  });

  it('a token in NODE_AUTH_TOKEN never reaches npm: when npm\'s own exchange fails, nothing is published with it', async () => {
    const name = lab.bound('lab-leak');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.0.0' });
    const npmrc = await lab.npmrc([`//${new URL(lab.registry.url).host}/:_authToken=\${NODE_AUTH_TOKEN}`]);
    const env = lab.env({ npm_config_userconfig: npmrc, NODE_AUTH_TOKEN: lab.registry.adminToken });
    // the toolkit's exchange passes, npm's is refused: npm is left with the .npmrc line only
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'delay', ms: 1 } });
    lab.registry.chaos.add({ route: '^/-/npm/v1/oidc/token/exchange/', method: 'POST', count: 1, fault: { kind: 'status', status: 404, body: '{"message":"refused"}' } });
    const err = await caught(async () => publishNpm(await npmRelease(lab, [tgz], { env }), { timing: fakeTiming() }));
    expect(err.code).toBe('NPM_PUBLISH_UNAUTHORIZED');
    expect(await integrityOf(name, '1.0.0')).toBeUndefined();
  });

  it('a registry token in the environment or an .npmrc is refused before anything happens', async () => {
    const name = lab.bound('lab-token');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.0.0' });
    const host = new URL(lab.registry.url).host;
    const viaEnv = await caught(async () => publishNpm(await npmRelease(lab, [tgz], { env: lab.env({ [`npm_config_//${host}/:_authToken`]: lab.registry.adminToken }) })));
    expect(viaEnv.code).toBe('NPM_TOKEN_CONFIGURED');
    expect(viaEnv.message).toContain(`npm_config_//${host}/:_authToken`);
    const rc = await lab.npmrc([`//${host}/:_authToken=${lab.registry.adminToken}`]);
    const viaFile = await caught(async () => publishNpm(await npmRelease(lab, [tgz], { env: lab.env({ npm_config_userconfig: rc }) })));
    expect(viaFile.code).toBe('NPM_TOKEN_CONFIGURED');
    expect(viaFile.message).toContain(`//${host}/:_authToken (user config ${rc})`);
    expect(viaFile.message).not.toContain(lab.registry.adminToken);
    expect(await integrityOf(name, '1.0.0')).toBeUndefined();
  });
});

describe('publish-npm in the lab: the toolkit\'s provenance on the registry', () => {
  /** build-npm's record of the tarballs, then the real sign and provenance steps. */
  async function attestedRelease(tgz: Packed): Promise<Awaited<ReturnType<typeof npmRelease>>> {
    const ctx = await npmRelease(lab, [tgz], { npm: { provenance: true } });
    const tarball = ctx.manifest.artifacts[0] as Artifact;
    const recorded: Step<ReleaseOptions> = { name: 'build-npm', description: 'the packed tarball', run: async (c) => void (await c.addArtifact(tarball.path, 'npm-tarball', 'any', tarball.meta)) };
    const run = await runSteps([recorded, signStep, provenanceStep], ctx);
    expect(run.error).toBeUndefined();
    return ctx;
  }

  it('stores the npm-shaped provenance for the published version; a refused store is finished by the re-run', async () => {
    const name = lab.bound('lab-attest');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.0.0' });
    const ctx = await attestedRelease(tgz);
    const route = `^/-/npm/v1/attestations/${name}@1\\.0\\.0$`;
    lab.registry.chaos.add({ route, method: 'PUT', count: 1, fault: { kind: 'status', status: 503 } });
    lab.registry.chaos.add({ route, method: 'PUT', count: 1, fault: { kind: 'status', status: 422, body: '{"error":"chaos: not accepted"}' } });
    const timing = fakeTiming();
    const refused = await caught(() => publishNpm(ctx, { timing }));
    expect(refused.code).toBe('NPM_ATTESTATION_REFUSED');
    expect(refused.message).toBe(`the registry refused the provenance of ${name}@1.0.0 (HTTP 422: chaos: not accepted)`);
    expect(refused.hint).toMatch(/The package is published; re-running the release stores the provenance without publishing again$/);
    expect(timing.slept).toEqual([1000]);
    expect(await integrityOf(name, '1.0.0')).toBe(tgz.integrity);

    const resumed = await publishNpm(ctx, { timing: fakeTiming() });
    expect(resumed.settings.provenance).toBe('toolkit');
    expect(resumed.packages).toEqual([{ name, version: '1.0.0', integrity: tgz.integrity, outcome: 'already-published', distTag: 'latest', attestation: 'stored' }]);
    expect(puts(name)).toHaveLength(2);
    const res = await fetch(new URL(`-/npm/v1/attestations/${name}@1.0.0`, lab.registry.url));
    expect(res.status).toBe(200);
    const stored = (await res.json()) as { attestations: Array<{ predicateType: string; bundle: unknown }> };
    expect(stored.attestations).toEqual([{ predicateType: 'https://slsa.dev/provenance/v1', bundle: JSON.parse(await readFile(path.join(ctx.releaseDir, NPM_PROVENANCE_FILE), 'utf8')) }]);

    const again = await publishNpm(ctx, { timing: fakeTiming() });
    expect(again.packages[0]).toMatchObject({ outcome: 'already-published', attestation: 'present' });

    // the same provenance for the next version's tarball: it does not name it, so nothing is published
    const [next] = await lab.pack({ name, version: '1.0.1' });
    const other = await npmRelease(lab, [next], { npm: { provenance: true } });
    await copyFile(path.join(ctx.releaseDir, NPM_PROVENANCE_FILE), path.join(other.releaseDir, NPM_PROVENANCE_FILE));
    const withoutProvenance = await caught(() => publishNpm(other, { timing: fakeTiming() }));
    expect(withoutProvenance.code).toBe('NPM_PROVENANCE_MISSING');
    other.stepName = 'provenance';
    await other.addArtifact(NPM_PROVENANCE_FILE, 'provenance', 'any');
    const mismatch = await caught(() => publishNpm(other, { timing: fakeTiming() }));
    expect(mismatch.code).toBe('NPM_PROVENANCE_MISMATCH');
    expect(mismatch.message).toContain(`does not attest pkg:npm/${name}@1.0.1`);
    expect(await integrityOf(name, '1.0.1')).toBeUndefined();
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { caught } from '../../../../../test/helpers/tmp.js';
import { publishNpm } from './publish.js';
import { fakeTiming, npmRelease, startPublishLab, type Packed, type PublishLab } from './testing.js';
import { waitForRegistry } from './wait.js';

let lab: PublishLab;
let name: string;
let published: Packed;

beforeAll(async () => {
  lab = await startPublishLab();
  name = lab.bound('lab-wait');
  await lab.bootstrap(name);
  [published] = await lab.pack({ name, version: '1.2.0' });
  await publishNpm(await npmRelease(lab, [published]), { timing: fakeTiming() });
});
afterAll(async () => {
  await lab?.stop();
});
afterEach(() => {
  lab.registry.chaos.clear();
});

/** Moves a dist-tag as a maintainer would (with the admin token). */
async function moveTag(tag: string, version: string): Promise<void> {
  const res = await fetch(new URL(`-/package/${name}/dist-tags/${tag}`, lab.registry.url), { method: 'PUT', headers: { authorization: `Bearer ${lab.registry.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(version) });
  expect(res.ok).toBe(true);
}

describe('wait-registry', () => {
  it('gives up after publish.npm.waitSeconds when the version never shows, polling with growing pauses', async () => {
    const [missing] = await lab.pack({ name, version: '1.3.0' });
    const ctx = await npmRelease(lab, [missing], { npm: { waitSeconds: 5 } });
    const timing = fakeTiming();
    const err = await caught(() => waitForRegistry(ctx, { timing }));
    expect(err.code).toBe('NPM_WAIT_TIMEOUT');
    expect(err.message).toBe(`${name}@1.3.0 was published, but after 5 s the registry still shows it as not served yet`);
    expect(err.hint).toMatch(/raise publish\.npm\.waitSeconds/);
    expect(timing.slept).toEqual([1000, 1500, 2250, 250]);
    expect(ctx.log.lines.some((l) => l.startsWith(`… waiting for the registry to serve ${name}@1.3.0 (not served yet; 0 of 5 s)`))).toBe(true);
  });

  it('keeps polling through a failing registry until the version is served', async () => {
    lab.registry.chaos.add({ route: `^/${name}$`, method: 'GET', count: 2, fault: { kind: 'status', status: 503 } });
    const timing = fakeTiming();
    const result = await waitForRegistry(await npmRelease(lab, [published]), { timing });
    expect(result.packages).toEqual([{ name, version: '1.2.0', integrity: published.integrity, distTag: 'latest', taggedVersion: '1.2.0', polls: 3 }]);
    expect(timing.slept).toEqual([1000, 1500]);
  });

  it('fails at once when the registry serves the version with other contents', async () => {
    const [other] = await lab.pack({ name, version: '1.2.0', seed: 'other' });
    const timing = fakeTiming();
    const err = await caught(async () => waitForRegistry(await npmRelease(lab, [other]), { timing }));
    expect(err.code).toBe('NPM_VERSION_CONFLICT');
    expect(timing.slept).toEqual([]);
  });

  it('checks the dist-tag: a moved tag fails a fresh publish and is only reported for an earlier one', async () => {
    await moveTag('latest', '0.0.1');
    try {
      const ctx = await npmRelease(lab, [published], { npm: { waitSeconds: 2 } });
      const err = await caught(() => waitForRegistry(ctx, { timing: fakeTiming() }));
      expect(err.code).toBe('NPM_DIST_TAG_MISMATCH');
      expect(err.message).toContain('the registry still shows it as served, but dist-tag latest names 0.0.1');
      expect(err.hint).toBe(`point the tag at this release: \`npm dist-tag add ${name}@1.2.0 latest\` (another release may have moved it meanwhile)`);

      ctx.manifest.steps['publish-npm'] = { state: 'succeeded', data: { packages: [{ name, version: '1.2.0', outcome: 'already-published' }] } };
      const earlier = await waitForRegistry(ctx, { timing: fakeTiming() });
      expect(earlier.notes).toEqual([`${name}@1.2.0: dist-tag latest now names 0.0.1 (published by an earlier run)`]);
    } finally {
      await moveTag('latest', '1.2.0');
    }
  });

  it('refuses a prerelease that the registry tags as latest', async () => {
    const [rc] = await lab.pack({ name, version: '2.0.0-rc.1' });
    expect((await publishNpm(await npmRelease(lab, [rc]), { timing: fakeTiming() })).packages[0]?.distTag).toBe('next');
    await moveTag('latest', '2.0.0-rc.1');
    try {
      const err = await caught(async () => waitForRegistry(await npmRelease(lab, [rc]), { timing: fakeTiming() }));
      expect(err.code).toBe('NPM_PRERELEASE_IS_LATEST');
    } finally {
      await moveTag('latest', '1.2.0');
    }
  });
});

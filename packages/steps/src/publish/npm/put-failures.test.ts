import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { caught } from '../../../../../test/helpers/tmp.js';
import { publishNpm } from './publish.js';
import { fakeTiming, npmRelease, startPublishLab, type PublishLab } from './testing.js';

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

describe('publish-npm: the publish PUT fails', () => {
  const cases = [
    { status: 404, code: 'NPM_PUBLISH_CREDENTIAL_DEAD', text: /404 Not Found.*not missing.*#4463/ },
    { status: 401, code: 'NPM_PUBLISH_UNAUTHORIZED', text: /401 Unauthorized/ },
    { status: 401, headers: { 'www-authenticate': 'OTP' }, code: 'NPM_PUBLISH_OTP_REQUIRED', text: /one-time password/ },
    { status: 403, code: 'NPM_PUBLISH_FORBIDDEN', text: /forbade/ },
  ];
  for (const c of cases) {
    it(`a ${c.status}${c.headers ? ' asking for an OTP' : ''} is diagnosed (${c.code}), not retried, and nothing is published`, async () => {
      const name = lab.bound('lab-put');
      await lab.bootstrap(name);
      const [tgz] = await lab.pack({ name, version: '1.1.0' });
      lab.registry.chaos.add({ route: `^/${name}$`, method: 'PUT', count: 1, fault: { kind: 'status', status: c.status, body: '{"error":"chaos"}', ...(c.headers ? { headers: c.headers } : {}) } });
      const timing = fakeTiming();
      const err = await caught(async () => publishNpm(await npmRelease(lab, [tgz]), { timing }));
      expect(err.code).toBe(c.code);
      expect(err.message).toMatch(c.text);
      expect(err.hint).toBeTruthy();
      expect(timing.slept).toEqual([]);
      expect(puts(name).map((r) => r.status)).toEqual([201, c.status]);
      expect(await integrityOf(name, '1.1.0')).toBeUndefined();
    });
  }

  it('a 500 once is retried after a new look at the registry, and the publish succeeds', async () => {
    const name = lab.bound('lab-retry');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.1.0' });
    lab.registry.chaos.add({ route: `^/${name}$`, method: 'PUT', count: 1, fault: { kind: 'status', status: 500 } });
    const timing = fakeTiming();
    const ctx = await npmRelease(lab, [tgz]);
    const start = lab.registry.log.length;
    const result = await publishNpm(ctx, { timing });
    expect(result.packages[0]?.outcome).toBe('published');
    expect(timing.slept).toEqual([1000]);
    const after = lab.registry.log.slice(start).filter((r) => r.path === `/${name}`);
    const firstPut = after.findIndex((r) => r.method === 'PUT');
    expect(after[firstPut]?.status).toBe(500);
    // the exact-version check ran again between the two uploads
    expect(after.slice(firstPut + 1).map((r) => r.method)).toContain('GET');
    expect(after.filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([500, 201]);
    expect(ctx.log.lines.some((l) => /retrying in 1\.0 s \(attempt 2 of 4\)/.test(l))).toBe(true);
    expect(await integrityOf(name, '1.1.0')).toBe(tgz.integrity);
  });

  it('5xx on every attempt gives up after the bounded retries with backoff', async () => {
    const name = lab.bound('lab-down');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.1.0' });
    lab.registry.chaos.add({ route: `^/${name}$`, method: 'PUT', count: 10, fault: { kind: 'status', status: 503 } });
    const timing = fakeTiming();
    const err = await caught(async () => publishNpm(await npmRelease(lab, [tgz]), { timing, retry: { retries: 2, minMs: 100, factor: 2, maxMs: 150 } }));
    expect(err.code).toBe('NPM_PUBLISH_UNAVAILABLE');
    expect(err.message).toMatch(/E503.*\(3 attempts\)/);
    expect(timing.slept).toEqual([100, 150]);
    expect(puts(name).map((r) => r.status)).toEqual([201, 503, 503, 503]);
    expect(await integrityOf(name, '1.1.0')).toBeUndefined();
  });

  it('a version npm finds already published (our look was answered 404) is recognised as the same bytes', async () => {
    const name = lab.bound('lab-race');
    await lab.bootstrap(name);
    const [tgz] = await lab.pack({ name, version: '1.1.0' });
    expect((await publishNpm(await npmRelease(lab, [tgz]), { timing: fakeTiming() })).packages[0]?.outcome).toBe('published');
    // the toolkit's two looks miss it; npm's own look finds it and refuses to publish over it
    lab.registry.chaos.add({ route: `^/${name}$`, method: 'GET', count: 2, fault: { kind: 'status', status: 404, body: '{"error":"not found"}' } });
    const result = await publishNpm(await npmRelease(lab, [tgz]), { timing: fakeTiming() });
    expect(result.packages[0]?.outcome).toBe('already-published');
    expect(puts(name)).toHaveLength(2);
  });
});

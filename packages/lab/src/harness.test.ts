import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabService, sendJson } from './harness.js';

const svc = new LabService({ name: 'test' });
svc.route('GET', '/files/:owner/:rest*', (_req, res, params) => sendJson(res, 200, params));
svc.route('GET', '/one/:id', (_req, res, params) => sendJson(res, 200, params));
beforeAll(() => svc.start());
afterAll(() => svc.stop());

describe('lab harness routing', () => {
  it('matches named parts, and a starred part across slashes', async () => {
    expect(await (await fetch(`${svc.url}/files/acme/a/b/c.txt`)).json()).toEqual({ owner: 'acme', rest: 'a/b/c.txt' });
    expect(await (await fetch(`${svc.url}/one/42`)).json()).toEqual({ id: '42' });
    expect((await fetch(`${svc.url}/one/42/more`)).status).toBe(404);
    expect(svc.log.at(-1)).toMatchObject({ method: 'GET', path: '/one/42/more', status: 404 });
  });
});

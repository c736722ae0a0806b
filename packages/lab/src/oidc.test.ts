import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcService } from './oidc.js';

const oidc = new OidcService({ repository: 'acme/widget', repository_owner: 'acme' });
beforeAll(() => oidc.start());
afterAll(() => oidc.stop());

describe('lab OIDC token service', () => {
  it('serves discovery and a JWKS that verifies the tokens it issues, with GitHub claims', async () => {
    const discovery = (await (await fetch(`${oidc.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    expect(discovery.issuer).toBe(oidc.issuer);
    const res = await fetch(`${oidc.requestUrl}&audience=npm:registry.example`, { headers: { authorization: `Bearer ${oidc.requestToken}` } });
    expect(res.status).toBe(200);
    const { value } = (await res.json()) as { value: string };
    const { payload, protectedHeader } = await jwtVerify(value, createRemoteJWKSet(new URL(discovery.jwks_uri)), { issuer: oidc.issuer, audience: 'npm:registry.example' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload).toMatchObject({ repository: 'acme/widget', repository_owner: 'acme', environment: 'release', sub: 'repo:acme/widget:environment:release', event_name: 'workflow_dispatch', runner_environment: 'github-hosted' });
    for (const c of ['repository_visibility', 'ref', 'sha', 'workflow_ref', 'job_workflow_ref', 'run_id', 'run_attempt', 'jti']) expect(payload[c], c).toBeTypeOf('string');
  });

  it('refuses a missing or wrong request token', async () => {
    expect((await fetch(`${oidc.requestUrl}&audience=x`)).status).toBe(401);
    expect((await fetch(`${oidc.requestUrl}&audience=x`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
  });

  it('lets a test play another workflow, and mint expired tokens', async () => {
    const token = await oidc.mint('sigstore', { claims: { job_workflow_ref: 'evil/fork/.github/workflows/x.yml@refs/heads/main' }, expiresIn: -60 });
    const jwks = createRemoteJWKSet(new URL(`${oidc.issuer}/.well-known/jwks`));
    await expect(jwtVerify(token, jwks, { issuer: oidc.issuer })).rejects.toThrow(/exp/);
    const payload = decodeJwt(token);
    expect((payload.exp as number) * 1000).toBeLessThan(Date.now());
    expect(payload.job_workflow_ref).toBe('evil/fork/.github/workflows/x.yml@refs/heads/main');
  });

  it('injects every kind of chaos fault, observed by a client', async () => {
    const url = `${oidc.requestUrl}&audience=x`;
    const headers = { authorization: `Bearer ${oidc.requestToken}` };
    oidc.service.chaos.add({ route: '^/token$', count: 2, fault: { kind: 'status', status: 503 } });
    expect((await fetch(url, { headers })).status).toBe(503);
    expect((await fetch(url, { headers })).status).toBe(503);
    expect((await fetch(url, { headers })).status).toBe(200);

    // over HTTP, as another process would
    await fetch(`${oidc.issuer}/__lab/chaos`, { method: 'POST', body: JSON.stringify({ route: '^/token$', count: 1, fault: { kind: 'reset' } }) });
    await expect(fetch(url, { headers })).rejects.toThrow();

    oidc.service.chaos.add({ route: '^/token$', count: 1, fault: { kind: 'timeout' } });
    await expect(fetch(url, { headers, signal: AbortSignal.timeout(300) })).rejects.toThrow(/timeout|abort/i);

    oidc.service.chaos.add({ route: '^/token$', count: 1, fault: { kind: 'delay', ms: 150 } });
    const t0 = performance.now();
    expect((await fetch(url, { headers })).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140); // the fault itself, not a speed assertion

    oidc.service.chaos.add({ route: '^/token$', method: 'GET', count: 1, fault: { kind: 'status', status: 403, body: '{"message":"Resource not accessible by integration"}' } });
    const forbidden = await fetch(url, { headers });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({ message: 'Resource not accessible by integration' });

    const kinds = oidc.service.log.filter((r) => r.fault).map((r) => r.fault);
    expect(kinds).toEqual(['status', 'status', 'reset', 'timeout', 'delay', 'status']);
    expect((await (await fetch(`${oidc.issuer}/__lab/chaos`)).json()) as { pending: unknown[] }).toMatchObject({ pending: [] });
  });

  it('refuses malformed chaos rules with a clear message', async () => {
    const bad = await fetch(`${oidc.issuer}/__lab/chaos`, { method: 'POST', body: JSON.stringify({ route: '(', count: 1, fault: { kind: 'reset' } }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/not a regular expression/);
  });
});

import { createRemoteJWKSet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcService } from '../oidc.js';
import { checkAttestation } from './attestations.js';
import { escapePackageName, isValidPackageName, npmPurl, packageOfPath, splitSpec } from './names.js';
import { type IdTokenClaims, matchTrustedPublisher, type TrustedPublisher, validateTrustedPublishers, verifyIdToken, workflowFile } from './trust.js';

const binding: TrustedPublisher = { package: 'vmaf-mcp', repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', environment: 'release' };
const claims: IdTokenClaims = {
  repository: 'mcp-release/vmaf-mcp',
  workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/tags/v1.0.0',
  environment: 'release',
  runner_environment: 'github-hosted',
};

describe('trusted publisher matching', () => {
  it('reads the workflow file from workflow_ref', () => {
    expect(workflowFile('o/r/.github/workflows/release.yml@refs/heads/main')).toBe('release.yml');
    expect(workflowFile('o/r/.github/workflows/release.yaml@refs/pull/1/merge')).toBe('release.yaml');
    expect(workflowFile('o/r/.github/workflows/sub/release.yml@refs/heads/main')).toBeUndefined();
    expect(workflowFile('release.yml')).toBeUndefined();
  });

  it('matches exactly, case included, and names the first mismatch', () => {
    expect(matchTrustedPublisher('vmaf-mcp', claims, [binding])).toEqual({ binding });
    const cases: Array<[Partial<IdTokenClaims>, string]> = [
      [{ repository: 'mcp-release/VMAF-mcp' }, 'wrong-repository'],
      [{ workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/Release.yml@refs/heads/main' }, 'wrong-workflow'],
      [{ workflow_ref: 'garbage' }, 'wrong-workflow'],
      [{ environment: 'Release' }, 'wrong-environment'],
      [{ environment: undefined }, 'wrong-environment'],
      [{ runner_environment: 'self-hosted' }, 'self-hosted-runner'],
    ];
    for (const [change, reason] of cases) {
      const result = matchTrustedPublisher('vmaf-mcp', { ...claims, ...change }, [binding]);
      expect(result, reason).toMatchObject({ refusal: { status: 404, reason } });
    }
    expect(matchTrustedPublisher('other', claims, [binding])).toMatchObject({ refusal: { status: 404, reason: 'no-trusted-publisher' } });
  });

  it('without an environment in the binding, any environment (or none) passes; any of several bindings may match', () => {
    const { environment: _drop, ...open } = binding;
    expect('binding' in matchTrustedPublisher('vmaf-mcp', { ...claims, environment: 'staging' }, [open])).toBe(true);
    expect('binding' in matchTrustedPublisher('vmaf-mcp', { ...claims, environment: undefined }, [open])).toBe(true);
    const second: TrustedPublisher = { ...binding, workflow: 'hotfix.yml' };
    const hotfix = { ...claims, workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/hotfix.yml@refs/heads/main' };
    expect(matchTrustedPublisher('vmaf-mcp', hotfix, [binding, second])).toEqual({ binding: second });
  });

  it('validates bindings and lists every problem', () => {
    expect(validateTrustedPublishers([binding])).toEqual([binding]);
    try {
      validateTrustedPublishers([{ package: 'Bad Name', repository: 'no-slash', workflow: '.github/workflows/release.yml', environment: '' }]);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'LAB_REGISTRY_BINDINGS' });
      expect((err as { details: string[] }).details).toHaveLength(4);
    }
  });
});

describe('ID token verification', () => {
  const oidc = new OidcService();
  const stranger = new OidcService();
  beforeAll(async () => {
    await oidc.start();
    await stranger.start();
  });
  afterAll(async () => {
    await oidc.stop();
    await stranger.stop();
  });
  const opts = () => ({ issuer: oidc.issuer, audiences: ['npm:127.0.0.1'], jwks: createRemoteJWKSet(new URL(`${oidc.issuer}/.well-known/jwks`)) });

  it('accepts a good token and refuses each bad one with its own reason', async () => {
    expect(await verifyIdToken(await oidc.mint('npm:127.0.0.1'), opts())).toMatchObject({ claims: { repository: 'mcp-release/vmaf-mcp' } });
    expect(await verifyIdToken(await oidc.mint('npm:127.0.0.1', { expiresIn: -30 }), opts())).toMatchObject({ refusal: { status: 401, reason: 'expired-token' } });
    expect(await verifyIdToken(await oidc.mint('sigstore'), opts())).toMatchObject({ refusal: { status: 401, reason: 'wrong-audience' } });
    expect(await verifyIdToken(await stranger.mint('npm:127.0.0.1'), opts())).toMatchObject({ refusal: { status: 401, reason: 'invalid-token' } });
    expect(await verifyIdToken(await oidc.mint('npm:127.0.0.1'), { ...opts(), issuer: 'https://token.actions.githubusercontent.com' })).toMatchObject({ refusal: { status: 401, reason: 'wrong-issuer' } });
    expect(await verifyIdToken('not.a.jwt', opts())).toMatchObject({ refusal: { status: 401, reason: 'invalid-token' } });
    expect(await verifyIdToken(await oidc.mint('npm:127.0.0.1', { claims: { workflow_ref: '' } }), opts())).toMatchObject({ refusal: { reason: 'invalid-token', message: expect.stringMatching(/no workflow_ref claim/) } });
  });

  it('tells an unreachable JWKS apart from a bad token', async () => {
    const gone = new OidcService();
    await gone.start();
    const token = await gone.mint('npm:127.0.0.1');
    const jwksUri = `${gone.issuer}/.well-known/jwks`;
    await gone.stop();
    const result = await verifyIdToken(token, { issuer: gone.issuer, audiences: ['npm:127.0.0.1'], jwks: createRemoteJWKSet(new URL(jwksUri)) });
    expect(result).toMatchObject({ refusal: { status: 502, reason: 'issuer-unreachable' } });
  });
});

describe('package names and paths', () => {
  it('escapes, validates and reads names as npm does', () => {
    expect(escapePackageName('@scope/name')).toBe('@scope%2fname');
    expect(escapePackageName('plain')).toBe('plain');
    expect(npmPurl('@scope/name', '1.0.0')).toBe('pkg:npm/%40scope/name@1.0.0');
    expect(isValidPackageName('vmaf-mcp')).toBe(true);
    expect(isValidPackageName('VMAF')).toBe(false);
    expect(isValidPackageName('../etc')).toBe(false);
    expect(packageOfPath('/@scope%2fname')).toEqual({ name: '@scope/name', rest: [] });
    expect(packageOfPath('/@scope%2Fname/-rev/1-a')).toEqual({ name: '@scope/name', rest: ['-rev', '1-a'] });
    expect(packageOfPath('/@scope/name/-/name-1.0.0.tgz')).toEqual({ name: '@scope/name', rest: ['-', 'name-1.0.0.tgz'] });
    expect(packageOfPath('/plain')).toEqual({ name: 'plain', rest: [] });
    expect(packageOfPath('/-/package/plain/dist-tags/latest')).toBeUndefined();
    expect(packageOfPath('/%E0%A4%A')).toBeUndefined();
    expect(splitSpec('@scope/name@1.2.3-rc.1')).toEqual({ name: '@scope/name', version: '1.2.3-rc.1' });
    expect(splitSpec('@scope/name')).toBeUndefined();
    expect(splitSpec('name@latest')).toBeUndefined();
  });
});

describe('attestation checks', () => {
  const digest = 'ab'.repeat(64);
  const integrity = `sha512-${Buffer.from(digest, 'hex').toString('base64')}`;
  const predicateType = 'https://slsa.dev/provenance/v1';
  const bundle = (statement: unknown, payloadType = 'application/vnd.in-toto+json') => ({
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    dsseEnvelope: { payloadType, payload: Buffer.from(JSON.stringify(statement)).toString('base64'), signatures: [{ sig: 'x', keyid: '' }] },
  });
  const statement = { _type: 'https://in-toto.io/Statement/v1', predicateType, subject: [{ name: 'pkg:npm/%40s/n@1.0.0', digest: { sha512: digest } }], predicate: {} };

  it('accepts a statement about this version and tarball, and says what is wrong otherwise', () => {
    expect(checkAttestation({ predicateType, bundle: bundle(statement) }, '@s/n', '1.0.0', integrity)).toMatchObject({ predicateType });
    expect(checkAttestation({ predicateType, bundle: bundle(statement, 'text/plain') }, '@s/n', '1.0.0', integrity)).toMatchObject({ status: 422, message: expect.stringMatching(/payloadType/) });
    expect(checkAttestation({ predicateType: 'x', bundle: bundle(statement) }, '@s/n', '1.0.0', integrity)).toMatchObject({ status: 422, message: expect.stringMatching(/predicateType/) });
    expect(checkAttestation({ predicateType, bundle: bundle(statement) }, '@s/n', '1.0.1', integrity)).toMatchObject({ status: 422, message: expect.stringMatching(/subject/) });
    expect(checkAttestation({ predicateType, bundle: { mediaType: 'application/json' } }, '@s/n', '1.0.0', integrity)).toMatchObject({ status: 422 });
    expect(checkAttestation({ predicateType }, '@s/n', '1.0.0', integrity)).toMatchObject({ status: 400 });
    expect(checkAttestation('nope', '@s/n', '1.0.0', integrity)).toMatchObject({ status: 400 });
  });
});

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcService, startSigstore, type SigstoreLab } from '@mcp-release/lab';
import { releaseContext } from '../../../../test/helpers/context.js';
import { caught, REPO_ROOT, SHARED_FIXTURES, tempDir } from '../../../../test/helpers/tmp.js';
import { GATE_ATTESTATION, GATE_REPORT_JSON, GOLDEN_PREDICATE_TYPE, goldenAttestationStep, runGoldenGate } from './gate.js';
import { renderJsonReport } from './logic.js';
import type { GateScorer } from './scorers.js';
import { loadGoldenTable } from './table.js';

const oidc = new OidcService();
let sigstore: SigstoreLab;

beforeAll(async () => {
  await oidc.start();
  sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks` });
});
afterAll(async () => {
  await sigstore.stop();
  await oidc.stop();
});

/** A scorer that reproduces every golden exactly: enough to produce a passing report without running anything. */
const exact: GateScorer = { name: 'exact', binary: 'none', selectsBackend: false, applicable: () => undefined, score: async (c) => c.expected };

async function gatedRelease(passed = true) {
  const dir = await tempDir();
  const env = {
    ...process.env,
    ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken,
    MCP_RELEASE_FULCIO_URL: sigstore.urls.fulcio,
    MCP_RELEASE_REKOR_URL: sigstore.urls.rekor,
    MCP_RELEASE_TSA_URL: sigstore.urls.tsa,
  };
  const ctx = await releaseContext(dir, {}, { repoRoot: REPO_ROOT, deps: { env } });
  ctx.stepName = 'build-native';
  await writeFile(path.join(ctx.releaseDir, 'vmaf-linux-x64'), 'the native CLI');
  const cli = await ctx.addArtifact('vmaf-linux-x64', 'native-cli', 'linux-x64');
  const { table, sha256 } = await loadGoldenTable(path.join(REPO_ROOT, 'policies/golden-scores.json'));
  const report = await runGoldenGate({ table, tablePath: 'policies/golden-scores.json', tableSha256: sha256, fixturesDir: SHARED_FIXTURES, scorers: [exact], backends: [], parityPlaces: 4, select: { ids: ['p10_psnr_y', 'q160x90_v061'] }, subjects: [{ name: cli.path, sha256: cli.sha256 }] });
  await writeFile(path.join(ctx.releaseDir, GATE_REPORT_JSON), renderJsonReport(passed ? report : { ...report, passed: false }));
  ctx.stepName = 'gate-golden';
  await ctx.addArtifact(GATE_REPORT_JSON, 'gate-report', 'any');
  ctx.stepName = 'attest-gate';
  return { ctx, cli };
}

describe('attest-gate', () => {
  it('DSSE-signs the golden statement over the scored artifacts', async () => {
    const { ctx, cli } = await gatedRelease();
    expect(await goldenAttestationStep.skip?.(ctx)).toBeUndefined();
    await goldenAttestationStep.run(ctx);
    const bundle = JSON.parse(await readFile(path.join(ctx.releaseDir, GATE_ATTESTATION), 'utf8'));
    expect(bundle.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json');
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
    expect(statement).toMatchObject({ _type: 'https://in-toto.io/Statement/v1', predicateType: GOLDEN_PREDICATE_TYPE, subject: [{ name: 'vmaf-linux-x64', digest: { sha256: cli.sha256 } }] });
    expect(statement.predicate).toMatchObject({ passed: true, summary: { passed: 2, failed: 0 } });
    const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(sigstore.trustedRoot)));
    expect(() => verifier.verify(toSignedEntity(bundleFromJSON(bundle)), { extensions: { issuer: oidc.issuer } })).not.toThrow();
    expect(ctx.manifest.artifacts.find((a) => a.path === GATE_ATTESTATION)).toMatchObject({ kind: 'provenance', meta: { predicateType: GOLDEN_PREDICATE_TYPE, subjects: 1 } });
  });

  it('refuses a failed gate and a subject that changed after the gate', async () => {
    const failed = await gatedRelease(false);
    expect((await caught(() => goldenAttestationStep.run(failed.ctx))).code).toBe('GATE_ATTEST_FAILED_GATE');
    const changed = await gatedRelease();
    await writeFile(path.join(changed.ctx.releaseDir, 'vmaf-linux-x64'), 'other bytes');
    expect((await caught(() => goldenAttestationStep.run(changed.ctx))).code).toBe('GATE_ATTEST_SUBJECT_CHANGED');
  });

  it('is skipped when the gate did not run', async () => {
    const ctx = await releaseContext(await tempDir(), {}, { repoRoot: REPO_ROOT });
    expect(await goldenAttestationStep.skip?.(ctx)).toEqual({ skipped: true, reason: `no ${GATE_REPORT_JSON} in this release (the golden gate did not run)` });
  });
});

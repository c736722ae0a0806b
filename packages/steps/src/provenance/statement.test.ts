import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { canonicalJson, newManifest, type Artifact, type ArtifactKind, type Manifest } from '@mcp-release/manifest';
import { TEST_PLAN } from '../../../../test/helpers/context.js';
import { tempDir } from '../../../../test/helpers/tmp.js';
import { jobClaimsFrom, signingIdentity, type JobClaims } from './claims.js';
import { buildNpmStatement, buildStatement, npmPurl, splitWorkflowRef, statementFromBundle } from './statement.js';
import { provenanceFingerprint } from './provenance-step.js';
import { renderVerifyScript, shellQuote, verifyScriptFiles, type VerifyScriptInput } from './verify-script.js';

const run = promisify(execFile);
const COMMIT = TEST_PLAN.commit;

const CLAIMS: JobClaims = jobClaimsFrom({
  iss: 'https://token.actions.githubusercontent.com',
  repository: 'mcp-release/vmaf-mcp',
  repository_owner: 'mcp-release',
  repository_id: '4242',
  repository_owner_id: 77,
  ref: 'refs/tags/v0.0.1',
  sha: COMMIT,
  workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/tags/v0.0.1',
  job_workflow_ref: 'mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/tags/v0.0.1',
  run_id: '99',
  run_attempt: '2',
  event_name: 'push',
  runner_environment: 'github-hosted',
  aud: 'sigstore',
});

function artifact(p: string, kind: ArtifactKind, meta?: Record<string, unknown>): Artifact {
  const h = (n: number): string => Buffer.from(p).toString('hex').padEnd(n, '0').slice(0, n);
  return { path: p, kind, platform: 'any', size: p.length, sha256: h(64), sha512: h(128), producedBy: 'test', ...(meta ? { meta } : {}) };
}

function sampleManifest(order: 'forward' | 'reverse' = 'forward'): Manifest {
  const m = newManifest({ ...structuredClone(TEST_PLAN), packages: [{ name: '@mcp-release/vmaf-mcp', version: '0.0.1', path: 'packages/vmaf-mcp' }] });
  const list = [
    artifact('mcp-release-vmaf-mcp-0.0.1.tgz', 'npm-tarball', { name: '@mcp-release/vmaf-mcp', version: '0.0.1' }),
    artifact('vmaf-helper-0.0.1.tgz', 'npm-tarball', { name: 'vmaf-helper', version: '0.0.1' }),
    artifact('libvmaf-linux-x64.so.3', 'native-library'),
    artifact('SHA256SUMS', 'checksums'),
    artifact('verify.sh', 'verify-script'),
    artifact('verify.sh.sigstore.json', 'sigstore-bundle'),
    artifact('provenance.intoto.sigstore.json', 'provenance'),
  ];
  m.artifacts = order === 'forward' ? list : list.reverse();
  m.native = { 'linux-x64': { project: { name: 'libvmaf', version: '3.0.0' }, source: { commit: COMMIT, fingerprint: 'f'.repeat(64) }, buildtype: 'release', options: { enable_float: true } } };
  return m;
}

describe('provenance statements (pure)', () => {
  it('subjects are exactly the release files without bundles and provenance, sorted, and the bytes do not depend on the manifest order', () => {
    const a = buildStatement(sampleManifest('forward'), CLAIMS);
    const b = buildStatement(sampleManifest('reverse'), CLAIMS);
    expect(a.subject.map((s) => s.name)).toEqual(['SHA256SUMS', 'libvmaf-linux-x64.so.3', 'mcp-release-vmaf-mcp-0.0.1.tgz', 'verify.sh', 'vmaf-helper-0.0.1.tgz']);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).toBe(JSON.stringify(JSON.parse(canonicalJson(a))));
    expect(Object.keys(a)).toEqual(['_type', 'predicate', 'predicateType', 'subject']);
    expect(a.subject[0]).toEqual({ name: 'SHA256SUMS', digest: { sha256: artifact('SHA256SUMS', 'checksums').sha256 } });
  });

  it('builds the predicate of GitHub workflow builds from the claims, with the plan and native options under internalParameters', () => {
    const m = sampleManifest();
    const p = buildStatement(m, CLAIMS).predicate;
    expect(p.buildDefinition.buildType).toBe('https://actions.github.io/buildtypes/workflow/v1');
    expect(p.buildDefinition.externalParameters).toEqual({ workflow: { ref: 'refs/tags/v0.0.1', repository: 'https://github.com/mcp-release/vmaf-mcp', path: '.github/workflows/release.yml' } });
    expect(p.buildDefinition.internalParameters.github).toEqual({ event_name: 'push', repository_id: '4242', repository_owner_id: '77', runner_environment: 'github-hosted' });
    expect(p.buildDefinition.internalParameters.mcpRelease).toEqual({
      plan: { commit: COMMIT, tag: 'v0.0.1', timestamp: TEST_PLAN.timestamp, packages: m.plan.packages },
      native: m.native,
    });
    expect(p.buildDefinition.resolvedDependencies).toEqual([{ uri: 'git+https://github.com/mcp-release/vmaf-mcp@refs/tags/v0.0.1', digest: { gitCommit: COMMIT } }]);
    expect(p.runDetails).toEqual({
      builder: { id: 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/tags/v0.0.1' },
      metadata: { invocationId: 'https://github.com/mcp-release/vmaf-mcp/actions/runs/99/attempts/2' },
    });
    const ghes = buildStatement(m, CLAIMS, { serverUrl: 'https://ghe.example.com/' }).predicate;
    expect(ghes.runDetails.builder.id).toBe('https://ghe.example.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/tags/v0.0.1');
  });

  it('names npm tarballs as npm does, scoped names percent-encoded, with sha512 digests', () => {
    const m = sampleManifest();
    const s = buildNpmStatement(m, CLAIMS);
    expect(s.subject).toEqual([
      { name: 'pkg:npm/%40mcp-release/vmaf-mcp@0.0.1', digest: { sha512: artifact('mcp-release-vmaf-mcp-0.0.1.tgz', 'npm-tarball').sha512 } },
      { name: 'pkg:npm/vmaf-helper@0.0.1', digest: { sha512: artifact('vmaf-helper-0.0.1.tgz', 'npm-tarball').sha512 } },
    ]);
    expect(s.predicate).toEqual(buildStatement(m, CLAIMS).predicate);
    expect(npmPurl('@scope/name', '1.0.0')).toBe('pkg:npm/%40scope/name@1.0.0');
    expect(() => npmPurl('../evil', '1.0.0')).toThrow(/not a valid npm package name/);
    const unnamed = sampleManifest();
    delete (unnamed.artifacts[0] as Artifact).meta;
    expect(() => buildNpmStatement(unnamed, CLAIMS)).toThrow(expect.objectContaining({ code: 'NPM_TARBALL_UNNAMED' }));
  });

  it('refuses a token for another commit, and a plan from a dirty tree', () => {
    const other = { ...CLAIMS, sha: 'd'.repeat(40) };
    expect(() => buildStatement(sampleManifest(), other)).toThrow(expect.objectContaining({ code: 'PROVENANCE_COMMIT_MISMATCH', message: expect.stringContaining('would attest another commit') }));
    const dirty = sampleManifest();
    dirty.plan.dirty = true;
    expect(() => buildStatement(dirty, CLAIMS)).toThrow(expect.objectContaining({ code: 'PROVENANCE_DIRTY_SOURCE' }));
    expect(buildStatement(sampleManifest(), { ...CLAIMS, sha: COMMIT.toUpperCase() }).predicate.buildDefinition.resolvedDependencies[0]?.digest.gitCommit).toBe(COMMIT);
  });

  it('reads claims, refusing a token without the ones provenance needs', () => {
    expect(() => jobClaimsFrom({ iss: 'x', repository: 'a/b' })).toThrow(expect.objectContaining({ code: 'OIDC_CLAIMS_MISSING', message: expect.stringContaining('job_workflow_ref') }));
    expect(CLAIMS).not.toHaveProperty('aud');
    expect(CLAIMS.repository_owner_id).toBe('77');
    expect(splitWorkflowRef('o/r/.github/workflows/x.yml@refs/tags/pkg@1.0.0', 'o/r')).toEqual({ path: '.github/workflows/x.yml', ref: 'refs/tags/pkg@1.0.0' });
    expect(signingIdentity(CLAIMS)).toEqual({ san: 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/tags/v0.0.1', issuer: 'https://token.actions.githubusercontent.com' });
  });

  it('fingerprints subjects and identity, but not the run attempt', () => {
    const m = sampleManifest();
    const base = provenanceFingerprint(m, CLAIMS, 'https://github.com');
    expect(provenanceFingerprint(sampleManifest('reverse'), { ...CLAIMS, run_attempt: '3', run_id: '100' }, 'https://github.com')).toBe(base);
    expect(provenanceFingerprint(m, { ...CLAIMS, job_workflow_ref: `${CLAIMS.job_workflow_ref}x` }, 'https://github.com')).not.toBe(base);
    const changed = sampleManifest();
    (changed.artifacts[2] as Artifact).sha256 = 'e'.repeat(64);
    expect(provenanceFingerprint(changed, CLAIMS, 'https://github.com')).not.toBe(base);
  });

  it('reads the statement back out of a DSSE bundle, refusing anything else', () => {
    const s = buildStatement(sampleManifest(), CLAIMS);
    const bundle = { dsseEnvelope: { payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(JSON.stringify(s)).toString('base64'), signatures: [] } };
    expect(statementFromBundle(bundle)).toEqual(s);
    expect(() => statementFromBundle({ messageSignature: {} })).toThrow(expect.objectContaining({ code: 'PROVENANCE_BUNDLE_INVALID' }));
  });
});

const INPUT: VerifyScriptInput = {
  tag: 'v0.0.1',
  repository: 'mcp-release/vmaf-mcp',
  commit: COMMIT,
  identity: "https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/it's",
  issuer: 'https://token.actions.githubusercontent.com',
  files: ['vmaf-mcp-0.0.1.tgz', 'libvmaf.so.3', 'models.tar.gz'],
};

describe('verify.sh (pure)', () => {
  it('is valid sh and bash, deterministic, and names every file once per check', async () => {
    const text = renderVerifyScript(INPUT);
    expect(renderVerifyScript({ ...INPUT, files: [...INPUT.files].reverse() })).toBe(text);
    const dir = await tempDir();
    await writeFile(path.join(dir, 'verify.sh'), text);
    await run('bash', ['-n', path.join(dir, 'verify.sh')]);
    await run('sh', ['-n', path.join(dir, 'verify.sh')]);
    expect(text).toContain(`IDENTITY=${shellQuote(INPUT.identity)}`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    for (const f of ['SHA256SUMS', 'libvmaf.so.3', 'models.tar.gz', 'verify.sh', 'vmaf-mcp-0.0.1.tgz']) {
      expect(text).toContain(`verify_blob '${f}'\n`);
      expect(text).toContain(`verify_provenance '${f}'\n`);
    }
    expect(text).toContain("listed 'verify.sh'\n");
    expect(text).not.toContain("listed 'SHA256SUMS'");
  });

  it('refuses release file names it cannot put into a script safely', () => {
    for (const bad of ['with space.txt', '-rf', '.hidden', 'dir/file', "it's", 'a$(b)', 'ünï']) {
      expect(() => renderVerifyScript({ ...INPUT, files: [bad] })).toThrow(expect.objectContaining({ code: 'VERIFY_SCRIPT_UNSAFE_NAME', message: expect.stringContaining(JSON.stringify(bad)) }));
    }
    expect(() => renderVerifyScript({ ...INPUT, repository: 'a/b; rm -rf /' })).toThrow(expect.objectContaining({ code: 'VERIFY_SCRIPT_UNSAFE_VALUE' }));
    expect(() => renderVerifyScript({ ...INPUT, tag: 'v1\nrm -rf /' })).toThrow(expect.objectContaining({ code: 'VERIFY_SCRIPT_UNSAFE_VALUE' }));
  });

  it('lists the release files known so far, without checksums, bundles, provenance and itself', () => {
    expect(verifyScriptFiles(sampleManifest())).toEqual(['libvmaf-linux-x64.so.3', 'mcp-release-vmaf-mcp-0.0.1.tgz', 'vmaf-helper-0.0.1.tgz']);
  });
});

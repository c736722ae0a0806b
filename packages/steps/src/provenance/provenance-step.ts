import path from 'node:path';
import { canonicalJson, compareNames, resolveInside, writeFileAtomic, type Manifest } from '@mcp-release/manifest';
import { hashWithProgress, skip, type Step } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import type { ReleaseContext, ReleaseOptions } from '../options.js';
import { endpointsFromEnv, githubIdentity, ReleaseSigner } from '../sigstore/signing.js';
import { digestOf } from '../source.js';
import { readJobClaims, serverUrlFromEnv, type JobClaims } from './claims.js';
import { attestedArtifacts, buildNpmStatement, buildStatement, NPM_PROVENANCE_FILE, npmSubjects, PROVENANCE_FILE, releaseSubjects, SLSA_PROVENANCE_V1 } from './statement.js';

/** The claims that end up in the predicate or decide the signing identity; the run number does not. */
const FINGERPRINT_CLAIMS = ['iss', 'repository', 'repository_id', 'repository_owner_id', 'ref', 'sha', 'workflow_ref', 'job_workflow_ref', 'event_name', 'runner_environment'] as const;

/**
 * What the provenance depends on: the subjects' digests, the plan and native options, and the
 * job's identity. A re-run attempt of the same workflow at the same commit keeps a finished
 * attestation (run_id and run_attempt are left out on purpose).
 */
export function provenanceFingerprint(manifest: Manifest, claims: JobClaims, serverUrl: string): string {
  const picked: Record<string, string | undefined> = {};
  for (const c of FINGERPRINT_CLAIMS) picked[c] = claims[c];
  return digestOf({
    step: 'provenance',
    subjects: releaseSubjects(manifest),
    npm: manifest.artifacts
      .filter((a) => a.kind === 'npm-tarball')
      .sort((a, b) => compareNames(a.path, b.path))
      .map((a) => [a.path, a.sha512, a.meta?.name, a.meta?.version]),
    plan: { commit: manifest.plan.commit, tag: manifest.plan.tag, timestamp: manifest.plan.timestamp, packages: manifest.plan.packages },
    native: manifest.native ?? {},
    claims: picked,
    serverUrl,
  });
}

/** Every subject must still be the bytes its step recorded: an attestation over changed files would be false. */
async function assertSubjectsIntact(ctx: ReleaseContext): Promise<void> {
  for (const a of attestedArtifacts(ctx.manifest)) {
    const file = await resolveInside(ctx.releaseDir, a.path, 'release file');
    const d = await hashWithProgress(ctx, file, a.path);
    if (d.sha256 !== a.sha256 || d.sha512 !== a.sha512 || d.size !== a.size) {
      throw new StepError('PROVENANCE_SUBJECT_CHANGED', `${a.path} changed after ${a.producedBy} recorded it (sha256 ${a.sha256.slice(0, 16)}… on record, ${d.sha256.slice(0, 16)}… on disk)`, {
        hint: `something modified the release folder; restore the file or re-run ${a.producedBy} and the steps after it`,
      });
    }
  }
}

/** Provenance comes after signing: every attested file must already have its `<file>.sigstore.json`. */
function assertSigned(manifest: Manifest): void {
  const bundles = new Set(manifest.artifacts.filter((a) => a.kind === 'sigstore-bundle').map((a) => a.path));
  const unsigned = attestedArtifacts(manifest)
    .map((a) => a.path)
    .filter((p) => !bundles.has(`${p}.sigstore.json`));
  if (unsigned.length) {
    throw new StepError('PROVENANCE_BEFORE_SIGNING', `${unsigned.length} release file(s) have no Sigstore bundle yet: ${unsigned.slice(0, 5).join(', ')}${unsigned.length > 5 ? ', …' : ''}`, {
      hint: 'run the sign step (after checksums) before provenance, so that every attested file is also signed',
    });
  }
}

/**
 * Attests the release: one in-toto statement with SLSA v1 provenance over every release file
 * (sha256 subjects, what `cosign verify-blob-attestation` and `gh attestation verify` check), and
 * one over the npm tarballs as npm names them (`pkg:npm/…`, sha512). Both are DSSE-signed with the
 * job's keyless identity and written as Sigstore bundles. The job's OIDC claims describe the run;
 * the token is checked by Fulcio, which certifies the same claims into the signing certificate.
 */
export const provenanceStep: Step<ReleaseOptions> = {
  name: 'provenance',
  description: 'attest every release file with SLSA v1 provenance, signed with Sigstore',
  skip(ctx) {
    return attestedArtifacts(ctx.manifest).length === 0 ? skip('there are no release files to attest') : undefined;
  },
  async fingerprint(ctx) {
    const claims = await readJobClaims(ctx.deps.env);
    return provenanceFingerprint(ctx.manifest, claims, serverUrlFromEnv(ctx.deps.env));
  },
  async run(ctx) {
    const env = ctx.deps.env;
    const claims = await readJobClaims(env);
    const options = { serverUrl: serverUrlFromEnv(env), allowDirty: ctx.options.rehearsal === true };
    if (ctx.manifest.plan.dirty && options.allowDirty) ctx.log.warn('attesting a plan made from uncommitted changes: allowed in a rehearsal only, and marked in the predicate');
    // Both statements are built (and the planned commit checked) before anything is signed.
    const statement = buildStatement(ctx.manifest, claims, options);
    const npm = npmSubjects(ctx.manifest).length ? buildNpmStatement(ctx.manifest, claims, options) : undefined;
    assertSigned(ctx.manifest);
    await assertSubjectsIntact(ctx);

    const signer = new ReleaseSigner(endpointsFromEnv(env), githubIdentity(env, 'sigstore'));
    const notes: string[] = [];
    const outputs: Array<[string, typeof statement]> = [[PROVENANCE_FILE, statement]];
    if (npm) outputs.push([NPM_PROVENANCE_FILE, npm]);
    for (const [file, s] of outputs) {
      ctx.progress(`signing ${file}`);
      const bundle = await signer.signStatement(s);
      await writeFileAtomic(path.join(ctx.releaseDir, file), canonicalJson(bundle));
      await ctx.addArtifact(file, 'provenance', 'any', { predicateType: SLSA_PROVENANCE_V1, subjects: s.subject.length });
      notes.push(`${file}: ${s.subject.length} subject(s)`);
    }
    if (!npm) notes.push(`no npm tarballs in the release: ${NPM_PROVENANCE_FILE} not written`);
    return {
      notes,
      data: {
        builder: statement.predicate.runDetails.builder.id,
        invocation: statement.predicate.runDetails.metadata.invocationId,
        commit: ctx.manifest.plan.commit,
        subjects: statement.subject.length,
        npmSubjects: npm?.subject.length ?? 0,
      },
    };
  },
};

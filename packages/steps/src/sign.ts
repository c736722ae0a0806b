import path from 'node:path';
import { ManifestError, resolveInside, signedArtifacts, writeFileAtomic } from '@mcp-release/manifest';
import { skip, type Step } from '@mcp-release/pipeline';
import type { ReleaseOptions } from './options.js';
import { endpointsFromEnv, githubIdentity, mapLimit, ReleaseSigner } from './sigstore/signing.js';
import { digestOf } from './source.js';

export const BUNDLE_SUFFIX = '.sigstore.json';
/** Files signed at once: each is streamed from disk, so this bounds open files and requests, not memory. */
export const SIGN_CONCURRENCY = 4;

/**
 * Keyless Sigstore signing of every release file: one certificate for the job's identity, then
 * each file streamed once through its digest and signature, logged in Rekor, timestamped when a
 * timestamp authority is configured, and written as `<file>.sigstore.json` (bundle v0.3, a single
 * certificate): what `cosign verify-blob --bundle` reads.
 */
export const signStep: Step<ReleaseOptions> = {
  name: 'sign',
  description: 'sign every release file (keyless Sigstore bundle next to it)',
  skip(ctx) {
    return signedArtifacts(ctx.manifest).length ? undefined : skip('no release files to sign');
  },
  fingerprint(ctx) {
    return digestOf({ step: 'sign', files: signedArtifacts(ctx.manifest).map((a) => [a.path, a.sha256]), endpoints: endpointsFromEnv(ctx.deps.env) });
  },
  async run(ctx) {
    const files = signedArtifacts(ctx.manifest);
    const endpoints = endpointsFromEnv(ctx.deps.env);
    const signer = new ReleaseSigner(endpoints, githubIdentity(ctx.deps.env));
    await signer.certificate(); // fail fast, before any file, when the job has no identity
    let done = 0;
    const signed = await mapLimit(files, SIGN_CONCURRENCY, async (a) => {
      const file = await resolveInside(ctx.releaseDir, a.path, 'release file');
      const { bundle, sha256 } = await signer.signFile(file);
      if (sha256 !== a.sha256) {
        throw new ManifestError('ARTIFACT_CHANGED', `${a.path} changed after ${a.producedBy} recorded it; it was not signed`, {
          hint: `something modified the release folder; rebuild ${a.path} (re-run ${a.producedBy})`,
        });
      }
      const bundlePath = `${a.path}${BUNDLE_SUFFIX}`;
      await writeFileAtomic(path.join(ctx.releaseDir, bundlePath), `${JSON.stringify(bundle, null, 2)}\n`);
      done += 1;
      ctx.progress(`signed ${done}/${files.length}: ${a.path}`);
      return { bundlePath, signs: a.path, platform: a.platform, logIndex: Number(bundle.verificationMaterial.tlogEntries[0]?.logIndex ?? -1) };
    });
    for (const s of signed) await ctx.addArtifact(s.bundlePath, 'sigstore-bundle', s.platform, { signs: s.signs, logIndex: s.logIndex });
    return { notes: [`${signed.length} file(s) signed${endpoints.tsa ? ', timestamped' : ''} (Rekor ${endpoints.rekor})`], data: { fulcio: endpoints.fulcio, rekor: endpoints.rekor, ...(endpoints.tsa ? { tsa: endpoints.tsa } : {}) } };
  },
};

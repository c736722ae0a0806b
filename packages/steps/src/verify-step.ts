import { skip, type Step } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import type { ReleaseOptions } from './options.js';
import { loadTrustedRoot, verifyRelease } from './verify/index.js';

export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

/**
 * The last check before anything is public: the release folder verified exactly as a consumer
 * would, from its files alone (SHA256SUMS, every signature against the policy's signer identity,
 * one signing run, provenance subjects), never from the manifest.
 */
export const verifyReleaseStep: Step<ReleaseOptions> = {
  name: 'verify',
  description: 'verify the release folder as a consumer would (checksums, every signature, provenance)',
  skip(ctx) {
    return ctx.options.policy.signer ? undefined : skip('no signer identity in the policy (signer:), so there is nothing to verify against');
  },
  async run(ctx) {
    const signer = ctx.options.policy.signer as NonNullable<ReleaseOptions['policy']['signer']>;
    const { trustedRoot, source } = await loadTrustedRoot({ env: ctx.deps.env, offline: false });
    const result = await verifyRelease({
      folder: ctx.releaseDir,
      policy: { repository: signer.repository, workflow: signer.workflow, refPattern: signer.ref, issuer: signer.issuer ?? GITHUB_ACTIONS_ISSUER },
      trustedRoot,
    });
    const verified = result.checks.filter((c) => c.status === 'verified').length;
    if (result.status !== 'verified') {
      const bad = result.checks.filter((c) => c.status === 'failed' || c.status === 'error');
      throw new StepError('RELEASE_NOT_VERIFIED', `the release does not verify as a consumer would check it (${result.status}): ${bad.length} check(s) failed`, {
        details: bad.slice(0, 12).map((c) => `${c.name}${c.file ? ` ${c.file}` : ''}: ${c.detail}`),
        hint: 'nothing was published; fix what the checks name (usually a file changed after signing: re-run the steps that made it)',
      });
    }
    return { notes: [`${verified} check(s) verified, identity ${result.identity.san}, trust root from ${source}`], data: { status: result.status, identity: result.identity, checks: verified } };
  },
};

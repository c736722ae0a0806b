/**
 * A 0-byte release file, end to end in the lab: hashed (the digests of nothing), listed in
 * SHA256SUMS that sha256sum accepts, signed with the lab Sigstore, attested, and verified as a
 * consumer verifies it: by the release verifier, by its bundle alone against the file and against
 * its digest; and one byte added to it is caught.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '@mcp-release/manifest';
import { checksumsStep } from '../../packages/steps/src/checksums.js';
import { provenanceStep } from '../../packages/steps/src/provenance/provenance-step.js';
import { signStep } from '../../packages/steps/src/sign.js';
import { verifyBundle } from '../../packages/steps/src/verify/bundle.js';
import { verifyRelease } from '../../packages/steps/src/verify/release.js';
import { verifyReleaseStep } from '../../packages/steps/src/verify-step.js';
import type { ReleaseContext } from '../../packages/steps/src/options.js';
import { releaseContext, runSteps } from '../helpers/context.js';
import { caught } from '../helpers/tmp.js';
import { buildFiles, startReleaseLab, type ReleaseLab } from './release.js';

const execFileAsync = promisify(execFile);
const EMPTY_SHA256 = createHash('sha256').digest('hex');
const EMPTY_SHA512 = createHash('sha512').digest('hex');

let work: string;
let lab: ReleaseLab;
let ctx: ReleaseContext;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'mcp-release-hostile-empty-'));
  lab = await startReleaseLab(work);
  ctx = await releaseContext(path.join(work, 'out'), { policy: lab.policy }, { deps: { env: lab.env } });
  const r = await runSteps([buildFiles([{ name: 'empty.bin', content: '' }, { name: 'libvmaf.so', content: 'not empty' }]), checksumsStep, signStep, provenanceStep, verifyReleaseStep], ctx);
  if (r.error) throw r.error;
});

afterAll(async () => {
  await lab?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const identity = () => ({ exact: `https://github.com/${lab.oidc.claims.job_workflow_ref}` });

describe('a 0-byte artifact', () => {
  it('is recorded with the digests of nothing and listed in a SHA256SUMS that sha256sum accepts', async () => {
    expect(await hashFile(path.join(ctx.releaseDir, 'empty.bin'))).toEqual({ size: 0, sha256: EMPTY_SHA256, sha512: EMPTY_SHA512 });
    expect(ctx.manifest.artifacts.find((a) => a.path === 'empty.bin')).toMatchObject({ size: 0, sha256: EMPTY_SHA256, sha512: EMPTY_SHA512 });
    expect(await readFile(path.join(ctx.releaseDir, 'SHA256SUMS'), 'utf8')).toContain(`${EMPTY_SHA256}  empty.bin\n`);
    const { stdout } = await execFileAsync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: ctx.releaseDir });
    expect(stdout).toContain('empty.bin: OK');
  });

  it('is signed and attested, and the whole release verifies as a consumer checks it', async () => {
    expect(ctx.manifest.steps.sign?.state).toBe('succeeded');
    expect(ctx.manifest.steps.verify?.state).toBe('succeeded');
    const result = await verifyRelease({
      folder: ctx.releaseDir,
      policy: { repository: lab.oidc.claims.repository, workflow: 'release.yml', refPattern: lab.oidc.claims.ref, issuer: lab.oidc.issuer },
      trustedRoot: lab.sigstore.trustedRoot,
    });
    expect(result.status).toBe('verified');
    expect(result.checks.filter((c) => c.file === 'empty.bin').map((c) => [c.name, c.status])).toEqual(expect.arrayContaining([['signature', 'verified']]));
  });

  it('its bundle verifies against the empty file and against the digest of nothing, and not against one byte', async () => {
    const bundle = path.join(ctx.releaseDir, 'empty.bin.sigstore.json');
    const common = { bundle, identity: identity(), issuer: lab.oidc.issuer, trustedRoot: lab.sigstore.trustedRoot };
    expect(await verifyBundle({ ...common, artifact: { file: path.join(ctx.releaseDir, 'empty.bin') } })).toMatchObject({ verified: true, kind: 'message' });
    expect(await verifyBundle({ ...common, artifact: { sha256: `sha256:${EMPTY_SHA256}` } })).toMatchObject({ verified: true });
    const oneByte = path.join(work, 'one-byte.bin');
    await writeFile(oneByte, '\0');
    expect(await caught(() => verifyBundle({ ...common, artifact: { file: oneByte } }))).toMatchObject({ code: 'VERIFY_DIGEST_MISMATCH' });
  });

  it('grown by one byte after signing, it stops the verify step before anything is published, named', async () => {
    const file = path.join(ctx.releaseDir, 'empty.bin');
    await writeFile(file, '\n');
    try {
      const again = await runSteps([verifyReleaseStep], ctx);
      expect(again.error).toMatchObject({ code: 'RELEASE_NOT_VERIFIED', details: expect.arrayContaining([expect.stringMatching(/^(checksums|signature) empty\.bin: /)]) });
    } finally {
      await writeFile(file, '');
      expect((await stat(file)).size).toBe(0);
    }
  });
});

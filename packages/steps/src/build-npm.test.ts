import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exec } from '@mcp-release/pipeline';
import { newManifest, npmIntegrity } from '@mcp-release/manifest';
import { releaseContext, runSteps } from '../../../test/helpers/context.js';
import { makeRepo } from '../../../test/helpers/git-repo.js';
import { tempDir } from '../../../test/helpers/tmp.js';
import { buildNpmStep, parsePackJson } from './build-npm.js';
import { freezePlan } from './plan.js';
import { parsePolicy } from './policy.js';

const policy = parsePolicy('version: 1\npackages:\n  - path: pkg\n', 'policy');

async function packOnce(repo: string): Promise<{ bytes: Buffer; integrity: unknown; sha512: string }> {
  const out = await tempDir();
  const plan = await freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined);
  const ctx = await releaseContext(out, { policy }, { repoRoot: repo, manifest: newManifest(plan) });
  const r = await runSteps([buildNpmStep], ctx);
  expect(r.error).toBeUndefined();
  const [a] = ctx.manifest.artifacts;
  return { bytes: await readFile(path.join(ctx.releaseDir, a?.path as string)), integrity: a?.meta?.integrity, sha512: a?.sha512 as string };
}

describe('build-npm', () => {
  it('packs with the real npm pack, byte-identical twice, recording the registry integrity', async () => {
    const repo = await tempDir();
    await makeRepo(repo);
    const one = await packOnce(repo);
    const two = await packOnce(repo);
    expect(one.bytes.equals(two.bytes)).toBe(true);
    expect(one.integrity).toBe(npmIntegrity(one.sha512));
    expect(one.integrity).toMatch(/^sha512-[A-Za-z0-9+/]+=*$/);
  });

  it('fails with the npm output when a prepack script fails', async () => {
    const repo = await tempDir();
    await makeRepo(repo, { prepack: 'echo prepack broke >&2 && exit 7' });
    const out = await tempDir();
    const plan = await freezePlan(repo, policy, { exec, env: {}, now: () => new Date() }, undefined);
    const ctx = await releaseContext(out, { policy }, { repoRoot: repo, manifest: newManifest(plan) });
    const r = await runSteps([buildNpmStep], ctx);
    expect(r.error).toMatchObject({ code: 'NPM_PACK_FAILED', hint: expect.stringContaining('prepack') });
    expect(ctx.manifest.artifacts).toEqual([]);
  });

  it('reads the JSON npm prints after lifecycle output', () => {
    const out = '> demo@1.0.0 prepack\n> echo hi\n\nhi\n[\n  {"name":"demo","version":"1.0.0","filename":"demo-1.0.0.tgz","integrity":"sha512-x","shasum":"y","entryCount":2}\n]\n';
    expect(parsePackJson(out)[0]?.filename).toBe('demo-1.0.0.tgz');
    expect(() => parsePackJson('npm error something')).toThrow(expect.objectContaining({ code: 'NPM_PACK_OUTPUT' }));
  });
});

import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { newManifest } from '@mcp-release/manifest';
import type { Step } from '@mcp-release/pipeline';
import { releaseContext, runSteps, TEST_PLAN } from '../../../../test/helpers/context.js';
import { tempDir } from '../../../../test/helpers/tmp.js';
import type { ReleaseOptions } from '../options.js';
import type * as CycloneDx from './cyclonedx.js';
import { sbomStep } from './index.js';

// The CycloneDX writer is replaced by one that writes a document its schema rejects, to see the
// step refuse it with the validator's messages.
vi.mock('./cyclonedx.js', async (importOriginal) => ({
  ...(await importOriginal<typeof CycloneDx>()),
  renderSbomCycloneDx: () => `${JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{ type: 'bogus', name: 'x' }] })}\n`,
}));

describe('sbom step with a document that does not validate', () => {
  it('fails with the validator messages and writes neither document', async () => {
    const dir = await tempDir();
    const ctx = await releaseContext(dir, {}, { manifest: newManifest(structuredClone(TEST_PLAN)) });
    const stage: Step<ReleaseOptions> = {
      name: 'gate',
      description: 'a release file',
      async run(c) {
        await writeFile(path.join(c.releaseDir, 'gate-report.json'), '{}\n');
        await c.addArtifact('gate-report.json', 'gate-report', 'any');
      },
    };
    const r = await runSteps([stage, sbomStep], ctx);
    expect(r.error).toMatchObject({
      code: 'SBOM_INVALID',
      message: expect.stringContaining('sbom.cdx.json does not validate against the CycloneDX 1.6 schema: components[0].type must be one of'),
      hint: expect.stringContaining('nothing was written'),
    });
    expect((r.error as { details: string[] }).details).toContainEqual(expect.stringContaining('components[0].type must be one of'));
    expect(await readdir(ctx.releaseDir)).toEqual(['gate-report.json']);
  });
});

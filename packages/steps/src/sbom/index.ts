import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '@mcp-release/manifest';
import type { Step } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import type { ReleaseOptions } from '../options.js';
import { digestOf } from '../source.js';
import { renderSbomCycloneDx, validateSbomCycloneDx } from './cyclonedx.js';
import { collectSbomInventory, SBOM_CYCLONEDX_FILE, SBOM_SPDX_FILE, sbomListedArtifacts } from './inventory.js';
import { renderSbomSpdx, validateSbomSpdx } from './spdx.js';

export { collectSbomInventory, nativeFacts, SBOM_CYCLONEDX_FILE, SBOM_SPDX_FILE, SBOM_UNLISTED_KINDS, sbomListedArtifacts, sbomTimestamp } from './inventory.js';
export type { CollectSbomOptions, SbomInventory } from './inventory.js';
export { BUNDLED_WORKSPACE_SCOPE, collectNpmDependencies, parseIntegrity, resolveInLockfile, withoutCredentials } from './npm.js';
export type { CollectNpmOptions, SbomDigest, SbomNpmInventory, SbomNpmPackage } from './npm.js';
export type { SbomNativeBinary } from './binaries.js';
export type { SbomModelFile, SbomModelsArchive } from './models.js';
export { spdxLicense, type LicenseVerdict } from './license.js';
export { renderSbomSpdx, validateSbomSpdx, SBOM_FACT_PREFIX, SBOM_TOOL } from './spdx.js';
export { renderSbomCycloneDx, validateSbomCycloneDx } from './cyclonedx.js';
export { contentUuid } from './ids.js';

/** Bumped when the documents' layout changes, so that a re-run writes them again. */
const SBOM_LAYOUT = 1;

async function fileDigest(file: string): Promise<string | null> {
  try {
    return createHash('sha256').update(await readFile(file)).digest('hex');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function invalid(format: string, file: string, errors: string[]): StepError {
  return new StepError('SBOM_INVALID', `${file} does not validate against the ${format} schema: ${errors[0] ?? 'invalid'}`, {
    details: errors.slice(0, 30),
    hint: `nothing was written; the fields above come from the manifest, the lockfile or a package.json — correct the value named there, or report the ${format} output as an mcp-release bug`,
  });
}

/**
 * Writes sbom.spdx.json (SPDX 2.3) and sbom.cdx.json (CycloneDX 1.6) into the release folder. It
 * runs after every release file exists and before the checksums and signatures, so both
 * documents are checksummed and signed like every other file. Both list every release file with
 * the digests the manifest recorded, the npm packages the tarballs install (from the lockfile),
 * the native build (commit, options, compilers, linked libraries, subprojects) and the model files.
 * The same manifest and lockfile give byte-identical documents; each is validated against its
 * schema before anything is written.
 */
export const sbomStep: Step<ReleaseOptions> = {
  name: 'sbom',
  description: `write ${SBOM_SPDX_FILE} (SPDX 2.3) and ${SBOM_CYCLONEDX_FILE} (CycloneDX 1.6) for every release file`,
  async fingerprint(ctx) {
    const m = ctx.manifest;
    const packageJsons: Record<string, string | null> = {};
    for (const p of m.plan.packages) packageJsons[p.path] = await fileDigest(path.join(ctx.repoRoot, p.path, 'package.json'));
    return digestOf({
      step: 'sbom',
      layout: SBOM_LAYOUT,
      plan: { tag: m.plan.tag, commit: m.plan.commit, timestamp: m.plan.timestamp, packages: m.plan.packages },
      files: sbomListedArtifacts(m).map((a) => [a.path, a.kind, a.platform, a.size, a.sha256, a.sha512, a.meta ?? null]),
      native: m.native ?? null,
      lockfiles: m.plan.packages.length
        ? {
            shrinkwrap: await fileDigest(path.join(ctx.repoRoot, 'npm-shrinkwrap.json')),
            lock: await fileDigest(path.join(ctx.repoRoot, 'package-lock.json')),
            root: await fileDigest(path.join(ctx.repoRoot, 'package.json')),
          }
        : null,
      packageJsons,
    });
  },
  async run(ctx) {
    const inventory = await collectSbomInventory({
      manifest: ctx.manifest,
      releaseDir: ctx.releaseDir,
      repoRoot: ctx.repoRoot,
      exec: ctx.deps.exec,
      warn: (message) => ctx.log.warn(message),
    });
    if (inventory.files.length === 0 && !inventory.npm) {
      throw new StepError('SBOM_NOTHING_TO_DESCRIBE', 'the manifest lists no release files and no npm packages to describe', {
        hint: 'run the build steps first (mcp-release build)',
      });
    }
    const spdx = renderSbomSpdx(inventory);
    const spdxErrors = validateSbomSpdx(JSON.parse(spdx));
    if (spdxErrors.length) throw invalid('SPDX 2.3', SBOM_SPDX_FILE, spdxErrors);
    const cdx = renderSbomCycloneDx(inventory);
    const cdxErrors = await validateSbomCycloneDx(cdx);
    if (cdxErrors.length) throw invalid('CycloneDX 1.6', SBOM_CYCLONEDX_FILE, cdxErrors);

    await writeFileAtomic(path.join(ctx.releaseDir, SBOM_SPDX_FILE), spdx);
    await writeFileAtomic(path.join(ctx.releaseDir, SBOM_CYCLONEDX_FILE), cdx);
    const npmCount = inventory.npm?.packages.length ?? 0;
    const counts = { files: inventory.files.length, npmPackages: npmCount, nativeBinaries: inventory.native.length, modelFiles: inventory.models.reduce((n, m) => n + m.files.length, 0) };
    await ctx.addArtifact(SBOM_SPDX_FILE, 'sbom-spdx', 'any', { format: 'SPDX-2.3', ...counts });
    await ctx.addArtifact(SBOM_CYCLONEDX_FILE, 'sbom-cyclonedx', 'any', { format: 'CycloneDX-1.6', ...counts });
    return {
      data: counts,
      notes: [`${counts.files} release file(s), ${npmCount} npm package(s), ${counts.nativeBinaries} native binary(ies), ${counts.modelFiles} model file(s)`],
    };
  },
};

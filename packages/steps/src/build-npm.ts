import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { npmIntegrity } from '@mcp-release/manifest';
import { execChecked, type Step } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import type { ReleaseOptions } from './options.js';
import { digestOf, identifySource } from './source.js';

interface PackResult {
  name: string;
  version: string;
  filename: string;
  integrity: string;
  shasum: string;
  entryCount: number;
}

/** npm prints lifecycle-script output around its JSON; take the JSON array it ends with. */
export function parsePackJson(stdout: string): PackResult[] {
  const start = stdout.lastIndexOf('\n[');
  const text = start >= 0 ? stdout.slice(start + 1) : stdout.trim().startsWith('[') ? stdout.trim() : '';
  try {
    const value = JSON.parse(text) as PackResult[];
    if (!Array.isArray(value) || value.length === 0) throw new Error('empty');
    return value;
  } catch (err) {
    throw new StepError('NPM_PACK_OUTPUT', 'could not read the result of `npm pack --json`', {
      cause: err,
      details: stdout.split('\n').slice(-10),
      hint: 'run `npm pack --json` in the package folder to see what npm prints; npm 11 or newer is required',
    });
  }
}

/**
 * Packs every planned workspace package with the real `npm pack`. npm writes tarballs with fixed
 * timestamps and sorted entries, so the same sources give the same bytes; the integrity recorded
 * is the registry's form (`sha512-<base64>`) and is checked against npm's own report.
 */
export const buildNpmStep: Step<ReleaseOptions> = {
  name: 'build-npm',
  description: 'pack each planned package with `npm pack` (reproducible tarballs)',
  async fingerprint(ctx) {
    const src = await identifySource(ctx.deps.exec, ctx.repoRoot);
    const npm = await ctx.deps.exec('npm', ['--version'], { cwd: ctx.repoRoot });
    return digestOf({ step: 'build-npm', source: src.fingerprint, npm: npm.stdout.trim(), packages: ctx.manifest.plan.packages });
  },
  async run(ctx) {
    const staging = path.join(ctx.workDir, 'npm-pack');
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    const notes: string[] = [];
    for (const p of ctx.manifest.plan.packages) {
      ctx.log.info(`  packing ${p.name}@${p.version} (${p.path})`);
      const result = await execChecked(ctx.deps.exec, 'npm', ['pack', '--json', '--pack-destination', staging], {
        cwd: path.join(ctx.repoRoot, p.path),
        env: { ...ctx.deps.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
        code: 'NPM_PACK_FAILED',
        what: `npm pack of ${p.name} failed`,
        hint: `run \`npm pack\` in ${p.path} to see the full error (a failing prepack script is the usual cause)`,
      });
      const [packed] = parsePackJson(result.stdout);
      if (!packed || packed.name !== p.name || packed.version !== p.version) {
        throw new StepError('NPM_PACK_MISMATCH', `npm packed ${packed?.name}@${packed?.version} but the plan says ${p.name}@${p.version}`, {
          hint: 'the package.json changed after the plan was frozen; plan again',
        });
      }
      await rename(path.join(staging, packed.filename), path.join(ctx.releaseDir, packed.filename));
      const artifact = await ctx.addArtifact(packed.filename, 'npm-tarball', 'any', {
        name: p.name,
        version: p.version,
        integrity: packed.integrity,
        shasum: packed.shasum,
        entryCount: packed.entryCount,
      });
      if (npmIntegrity(artifact.sha512) !== packed.integrity) {
        throw new StepError('NPM_PACK_INTEGRITY_MISMATCH', `${packed.filename}: npm reported ${packed.integrity} but the file hashes to ${npmIntegrity(artifact.sha512)}`, {
          hint: 'something rewrote the tarball after npm packed it; check for tools touching the release folder',
        });
      }
      notes.push(`${packed.filename} ${packed.integrity.slice(0, 20)}…`);
    }
    return { notes };
  },
};

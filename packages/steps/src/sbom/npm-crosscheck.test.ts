import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../../test/helpers/cli.js';
import { REPO_ROOT } from '../../../../test/helpers/tmp.js';
import { collectNpmDependencies, type SbomNpmInventory } from './index.js';

const WORKSPACE = 'packages/vmaf-mcp';
const PLANNED = [{ name: 'vmaf-mcp', version: '0.1.0', path: WORKSPACE }];

interface NpmSpdx {
  packages: Array<{ name: string; versionInfo: string; externalRefs: Array<{ referenceType: string; referenceLocator: string }>; checksums?: Array<{ algorithm: string; checksumValue: string }> }>;
}
interface NpmCdx {
  components: Array<{ name: string; version: string; purl: string }>;
}

/**
 * The peer check: npm's own `npm sbom` for the vmaf-mcp workspace, production dependencies only,
 * against what the SBOM step lists for the same workspace from the same lockfile.
 *
 * `npm sbom` refuses this repository's root as it is (EINVALIDPURLTYPE: the workspace root's
 * package.json has no version, and npm always puts the root in its SBOM), so npm runs on a copy
 * of the root package.json with a version added, next to the real package-lock.json and the
 * workspace package.jsons. The copy has no node_modules, so both formats are made from the
 * lockfile (--package-lock-only), which is also what the SBOM step reads.
 */
describe('the npm section against npm sbom', () => {
  let copy: string;
  let spdx: NpmSpdx;
  let cdx: NpmCdx;
  let ours: SbomNpmInventory;
  let query: Array<{ name: string; version: string }>;
  let devQuery: Array<{ name: string; version: string }>;
  let rootName: string;

  async function npm(args: string[]): Promise<string> {
    const r = await run('npm', args, { cwd: copy });
    if (r.code !== 0) throw new Error(`npm ${args.join(' ')} failed:\n${r.stderr}`);
    return r.stdout;
  }

  beforeAll(async () => {
    copy = await mkdtemp(path.join(tmpdir(), 'mcp-release-npm-sbom-'));
    const root = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; workspaces: string[]; version?: string };
    rootName = root.name;
    await writeFile(path.join(copy, 'package.json'), JSON.stringify({ ...root, version: root.version ?? '0.0.0' }, null, 2));
    await writeFile(path.join(copy, 'package-lock.json'), await readFile(path.join(REPO_ROOT, 'package-lock.json')));
    for (const ws of root.workspaces) {
      await mkdir(path.join(copy, ws), { recursive: true });
      await writeFile(path.join(copy, ws, 'package.json'), await readFile(path.join(REPO_ROOT, ws, 'package.json')));
    }
    const common = ['--package-lock-only', '--omit', 'dev', '--workspace', WORKSPACE];
    spdx = JSON.parse(await npm(['sbom', '--sbom-format', 'spdx', ...common])) as NpmSpdx;
    cdx = JSON.parse(await npm(['sbom', '--sbom-format', 'cyclonedx', ...common])) as NpmCdx;
    query = JSON.parse(await npm(['query', '#vmaf-mcp *', '--package-lock-only'])) as typeof query;
    devQuery = JSON.parse(await npm(['query', '#vmaf-mcp *.dev', '--package-lock-only'])) as typeof devQuery;
    ours = await collectNpmDependencies({ repoRoot: REPO_ROOT, packages: PLANNED, warn: () => undefined });
  });
  afterAll(async () => {
    await rm(copy, { recursive: true, force: true });
  });

  it('lists every package npm sbom lists, with the same purl, version and sha512', () => {
    const byPurl = new Map(ours.packages.map((p) => [p.purl, p]));
    // npm always adds the workspace root (mcp-release-workspace, with the version given to the
    // copy; in CycloneDX it is metadata.component): it is neither released nor installed by the
    // tarball, so it is not in our list.
    const spdxListed = spdx.packages.filter((p) => p.name !== rootName);
    expect(spdx.packages.length - spdxListed.length).toBe(1);
    expect(spdxListed.length).toBeGreaterThan(50);
    for (const p of spdxListed) {
      const purl = p.externalRefs.find((r) => r.referenceType === 'purl')?.referenceLocator as string;
      const mine = byPurl.get(purl);
      expect(mine, `${purl} (npm sbom spdx)`).toBeDefined();
      expect(mine?.version).toBe(p.versionInfo);
      expect(mine?.name).toBe(p.name);
      const sha512 = p.checksums?.find((c) => c.algorithm === 'SHA512')?.checksumValue;
      if (sha512) expect(mine?.digests).toContainEqual({ algorithm: 'sha512', hex: sha512 });
    }
    expect(cdx.components.length).toBeGreaterThan(50);
    for (const c of cdx.components) {
      const mine = byPurl.get(c.purl);
      expect(mine, `${c.purl} (npm sbom cyclonedx)`).toBeDefined();
      expect(mine?.version).toBe(c.version);
    }
    console.info(`npm sbom: ${spdx.packages.length} SPDX packages (${spdxListed.length} besides the workspace root), ${cdx.components.length} CycloneDX components; ours: ${ours.packages.length}`);
  });

  it('lists exactly the tree npm resolves for the workspace; the extras are what npm --omit dev drops as dev', () => {
    const key = (p: { name: string; version: string }): string => `${p.name}@${p.version}`;
    const mine = new Set(ours.packages.map(key));
    const tree = new Set([...query.map(key), 'vmaf-mcp@0.1.0']);
    expect([...mine].sort()).toEqual([...tree].sort());
    // npm's `.dev` selector marks a package dev when any path to it passes a dev dependency of any
    // workspace, even when vmaf-mcp needs it at run time (zod, jose, hono…); those are installed by
    // the tarball, so the SBOM keeps them.
    const listedByNpm = new Set(spdx.packages.map((p) => `${p.name}@${p.versionInfo}`));
    const extras = [...mine].filter((id) => !listedByNpm.has(id));
    const dev = new Set(devQuery.map(key));
    expect(extras.filter((id) => !dev.has(id))).toEqual([]);
    console.info(`ours ${mine.size} = npm query "#vmaf-mcp *" ${query.length} nodes (${tree.size - 1} unique) + vmaf-mcp; ${extras.length} kept that npm sbom --omit dev drops: ${extras.join(', ')}`);
  });
});

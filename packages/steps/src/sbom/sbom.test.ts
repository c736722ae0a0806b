import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newManifest, readManifest, type Manifest, type NativeBuild } from '@mcp-release/manifest';
import { exec, type Exec, type Step } from '@mcp-release/pipeline';
import { cli } from '../../../../test/helpers/cli.js';
import { releaseContext, runSteps, TEST_PLAN } from '../../../../test/helpers/context.js';
import { REPO_ROOT, tempDir } from '../../../../test/helpers/tmp.js';
import type { ReleaseOptions } from '../options.js';
import { verifyRelease } from '../verify/release.js';
import { startSigningLab } from '../verify/testing.js';
import { SBOM_CYCLONEDX_FILE, SBOM_SPDX_FILE, sbomListedArtifacts, sbomStep, validateSbomCycloneDx, validateSbomSpdx } from './index.js';

type Json = Record<string, unknown>;
interface SpdxDoc {
  documentNamespace: string;
  creationInfo: { created: string };
  packages: Array<Json & { SPDXID: string; name: string; versionInfo?: string; packageFileName?: string; licenseDeclared: string; checksums?: Array<{ algorithm: string; checksumValue: string }>; externalRefs?: Array<{ referenceLocator: string }>; annotations?: Array<{ comment: string }> }>;
  files: Array<{ SPDXID: string; fileName: string; checksums: Array<{ algorithm: string; checksumValue: string }> }>;
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
}
interface CdxComponent {
  'bom-ref': string;
  type: string;
  name: string;
  version?: string;
  purl?: string;
  hashes?: Array<{ alg: string; content: string }>;
  licenses?: unknown[];
  properties?: Array<{ name: string; value: string }>;
  components?: CdxComponent[];
}
interface CdxDoc {
  serialNumber: string;
  metadata: { timestamp: string };
  components: CdxComponent[];
  dependencies: Array<{ ref: string; dependsOn?: string[] }>;
}

/** Where a document names a file and gives its sha256, the way the release verifier reads SBOMs. */
function listings(doc: unknown): Array<{ names: string[]; sha256: string[]; sha512: string[] }> {
  const out: Array<{ names: string[]; sha256: string[]; sha512: string[] }> = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const o = node as Json;
    const names = ['fileName', 'packageFileName', 'name'].map((k) => o[k]).filter((v): v is string => typeof v === 'string').map((v) => v.replace(/^\.\//, ''));
    const sums = [...((o.checksums as Json[] | undefined) ?? []), ...((o.hashes as Json[] | undefined) ?? [])].map((c) => [String(c.algorithm ?? c.alg).replace(/-/g, '').toLowerCase(), String(c.checksumValue ?? c.content)]);
    const sha256 = sums.filter(([a]) => a === 'sha256').map(([, v]) => v as string);
    const sha512 = sums.filter(([a]) => a === 'sha512').map(([, v]) => v as string);
    if (names.length && sha256.length) out.push({ names, sha256, sha512 });
    Object.values(o).forEach(visit);
  };
  visit(doc);
  return out;
}

function allComponents(list: CdxComponent[]): CdxComponent[] {
  return list.flatMap((c) => [c, ...allComponents(c.components ?? [])]);
}

async function readDocs(releaseDir: string): Promise<{ spdxText: string; cdxText: string; spdx: SpdxDoc; cdx: CdxDoc }> {
  const spdxText = await readFile(path.join(releaseDir, SBOM_SPDX_FILE), 'utf8');
  const cdxText = await readFile(path.join(releaseDir, SBOM_CYCLONEDX_FILE), 'utf8');
  return { spdxText, cdxText, spdx: JSON.parse(spdxText) as SpdxDoc, cdx: JSON.parse(cdxText) as CdxDoc };
}

const lock = JSON.parse(await readFile(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string }> };

describe('sbom step on a real build (mcp-release build: two npm packages, the native library and CLI, models)', () => {
  let built: string;
  beforeAll(async () => {
    built = await mkdtemp(path.join(tmpdir(), 'mcp-release-sbom-build-'));
    const r = await cli(['build', '--out', built]);
    if (r.code !== 0) throw new Error(`mcp-release build failed:\n${r.stderr}`);
  });
  afterAll(async () => {
    await rm(built, { recursive: true, force: true });
  });

  /** A context over a fresh copy of the build: release files, manifest, and the repository's lockfile. */
  async function overCopy(edit?: (m: Manifest) => void, deps?: { exec?: Exec }) {
    const dir = await tempDir('mcp-release-sbom-');
    await cp(path.join(built, 'release'), path.join(dir, 'release'), { recursive: true });
    const manifest = await readManifest(path.join(built, 'manifest.json'));
    edit?.(manifest);
    return releaseContext(dir, {}, { repoRoot: REPO_ROOT, manifest, ...(deps ? { deps } : {}) });
  }

  it('writes sbom.spdx.json and sbom.cdx.json that validate, listing every release file with its sha256 and sha512', async () => {
    const ctx = await overCopy();
    const r = await runSteps([sbomStep], ctx);
    expect(r.error).toBeUndefined();
    const { spdx, cdx, cdxText } = await readDocs(ctx.releaseDir);
    expect(validateSbomSpdx(spdx)).toEqual([]);
    expect(await validateSbomCycloneDx(cdxText)).toEqual([]);
    expect(ctx.manifest.artifacts.filter((a) => a.producedBy === 'sbom').map((a) => [a.path, a.kind, a.platform])).toEqual([
      [SBOM_CYCLONEDX_FILE, 'sbom-cyclonedx', 'any'],
      [SBOM_SPDX_FILE, 'sbom-spdx', 'any'],
    ]);

    const listed = sbomListedArtifacts(ctx.manifest).filter((a) => a.producedBy !== 'sbom');
    expect(listed.map((a) => a.kind).sort()).toEqual(['models-archive', 'native-cli', 'native-library', 'npm-tarball', 'npm-tarball']);
    for (const doc of [spdx, cdx]) {
      const found = listings(doc);
      for (const a of listed) {
        expect(found.some((l) => l.names.includes(a.path) && l.sha256.includes(a.sha256) && l.sha512.includes(a.sha512)), `${a.path} in ${JSON.stringify(doc).slice(0, 30)}`).toBe(true);
      }
    }
    expect(spdx.creationInfo.created).toBe(ctx.manifest.plan.timestamp);
    expect(new Date(cdx.metadata.timestamp).toISOString()).toBe(new Date(ctx.manifest.plan.timestamp).toISOString());
    expect(spdx.documentNamespace).toMatch(/^https:\/\/spdx\.org\/spdxdocs\/release-v[\w.-]+-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(cdx.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('satisfies the release verifier: both SBOMs list every release file with its sha256', async () => {
    const ctx = await overCopy();
    expect((await runSteps([sbomStep], ctx)).error).toBeUndefined();
    const lab = await startSigningLab();
    try {
      const policy = { repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', refPattern: 'refs/heads/main', issuer: lab.oidc.issuer };
      const result = await verifyRelease({ folder: ctx.releaseDir, policy, trustedRoot: lab.sigstore.trustedRoot });
      // unsigned here, so the signature checks fail; the SBOM checks stand on their own
      const sbomChecks = result.checks.filter((c) => c.name === 'sbom').map((c) => [c.file, c.status, c.detail]);
      const listed = ctx.manifest.artifacts.filter((a) => a.producedBy !== 'sbom').length;
      expect(sbomChecks).toEqual([
        [SBOM_CYCLONEDX_FILE, 'verified', `lists ${listed} release files with their sha256`],
        [SBOM_SPDX_FILE, 'verified', `lists ${listed} release files with their sha256`],
      ]);
    } finally {
      await lab.stop();
    }
  });

  it('describes the npm packages as their tarballs install them: purl, version, license, sha512, dependencies', async () => {
    const ctx = await overCopy();
    expect((await runSteps([sbomStep], ctx)).error).toBeUndefined();
    const { spdx, cdx } = await readDocs(ctx.releaseDir);
    const pkg = (name: string) => spdx.packages.find((p) => p.name === name && p.externalRefs);
    const sdkVersion = lock.packages['node_modules/@modelcontextprotocol/sdk']?.version as string;
    const vmafMcp = pkg('vmaf-mcp');
    expect(vmafMcp).toMatchObject({ versionInfo: '0.1.0', packageFileName: 'vmaf-mcp-0.1.0.tgz', licenseDeclared: 'MIT', externalRefs: [{ referenceLocator: 'pkg:npm/vmaf-mcp@0.1.0' }] });
    const sdk = pkg('@modelcontextprotocol/sdk');
    expect(sdk).toMatchObject({ versionInfo: sdkVersion, licenseDeclared: 'MIT', externalRefs: [{ referenceLocator: `pkg:npm/%40modelcontextprotocol/sdk@${sdkVersion}` }] });
    const integrity = lock.packages['node_modules/@modelcontextprotocol/sdk']?.integrity as string;
    expect(sdk?.checksums).toEqual([{ algorithm: 'SHA512', checksumValue: Buffer.from(integrity.replace(/^sha512-/, ''), 'base64').toString('hex') }]);
    const dependsOn = spdx.relationships.filter((r) => r.spdxElementId === vmafMcp?.SPDXID && r.relationshipType === 'DEPENDS_ON').map((r) => spdx.packages.find((p) => p.SPDXID === r.relatedSpdxElement)?.name);
    expect(dependsOn.sort()).toEqual(['@modelcontextprotocol/sdk', 'zod']);
    // bundled workspace packages and dev-only tooling are not dependencies
    const names = new Set(spdx.packages.map((p) => p.name));
    for (const absent of ['@mcp-release/manifest', '@mcp-release/steps', 'vitest', 'eslint', 'typescript', 'esbuild', 'mcp-release-workspace']) expect(names.has(absent), absent).toBe(false);

    const components = allComponents(cdx.components);
    const sdkRef = `pkg:npm/%40modelcontextprotocol/sdk@${sdkVersion}`;
    expect(components.find((c) => c['bom-ref'] === sdkRef)).toMatchObject({ name: '@modelcontextprotocol/sdk', version: sdkVersion, purl: sdkRef, licenses: [{ license: { id: 'MIT' } }] });
    expect(cdx.dependencies.find((d) => d.ref === 'pkg:npm/vmaf-mcp@0.1.0')?.dependsOn).toContain(sdkRef);
    // the released package sits inside its tarball's component
    expect(cdx.components.find((c) => c.name === 'vmaf-mcp-0.1.0.tgz')?.components?.map((c) => c.purl)).toEqual(['pkg:npm/vmaf-mcp@0.1.0']);
  });

  it('describes the native library and CLI: digests, commit, meson options, compiler, NEEDED libraries, subprojects', async () => {
    let readelfCalls = 0;
    const counting: Exec = (command, args, options) => {
      if (command === 'readelf') readelfCalls += 1;
      return exec(command, args, options);
    };
    // without NEEDED in the meta, readelf -d reads them from the release files
    const ctx = await overCopy((m) => {
      for (const a of m.artifacts) if (a.kind === 'native-library' || a.kind === 'native-cli') delete a.meta?.needed;
    }, { exec: counting });
    expect((await runSteps([sbomStep], ctx)).error).toBeUndefined();
    expect(readelfCalls).toBe(2);
    const original = await readManifest(path.join(built, 'manifest.json'));
    const native = Object.values(original.native ?? {})[0] as NativeBuild;
    const lib = original.artifacts.find((a) => a.kind === 'native-library');
    const cliFile = original.artifacts.find((a) => a.kind === 'native-cli');
    const { spdx, cdx } = await readDocs(ctx.releaseDir);

    const libPkg = spdx.packages.find((p) => p.packageFileName === lib?.path);
    const comments = libPkg?.annotations?.map((a) => a.comment) ?? [];
    expect(comments).toEqual(
      expect.arrayContaining([
        `mcp-release:source:commit=${native.source.commit}`,
        'mcp-release:meson:option:enable_float=true',
        `mcp-release:meson:buildtype=${native.buildtype}`,
        `mcp-release:compiler:c=${native.compilers?.[0]?.id} ${native.compilers?.[0]?.version}`,
        ...((lib?.meta?.needed as string[]).map((n) => `mcp-release:elf:needed=${n}`)),
      ]),
    );
    expect(libPkg?.sourceInfo).toContain(`at commit ${native.source.commit}`);
    const linksOf = (id: string | undefined) =>
      spdx.relationships.filter((r) => r.spdxElementId === id && r.relationshipType === 'DYNAMIC_LINK').map((r) => spdx.packages.find((p) => p.SPDXID === r.relatedSpdxElement)?.name).sort();
    expect(linksOf(libPkg?.SPDXID)).toEqual([...(lib?.meta?.needed as string[])].sort());
    // the CLI links against the released library itself
    const cliPkg = spdx.packages.find((p) => p.packageFileName === cliFile?.path);
    expect(linksOf(cliPkg?.SPDXID)).toContain(lib?.path);

    const cdxLib = cdx.components.find((c) => c.name === lib?.path);
    expect(cdxLib?.properties).toEqual(expect.arrayContaining([{ name: 'mcp-release:source:commit', value: native.source.commit }, { name: 'mcp-release:meson:option:enable_float', value: 'true' }]));
    expect(cdx.dependencies.find((d) => d.ref === `file:${cliFile?.path}`)?.dependsOn).toContain(`file:${lib?.path}`);
  });

  it('records the meson subprojects with their versions', async () => {
    const ctx = await overCopy((m) => {
      for (const b of Object.values(m.native ?? {})) (b.targets as Json).subprojects = [{ name: 'libsvm', version: '3.24' }];
    });
    expect((await runSteps([sbomStep], ctx)).error).toBeUndefined();
    const { spdx, cdx } = await readDocs(ctx.releaseDir);
    const sub = spdx.packages.find((p) => p.name === 'libsvm');
    expect(sub?.versionInfo).toBe('3.24');
    expect(spdx.relationships.filter((r) => r.spdxElementId === sub?.SPDXID && r.relationshipType === 'BUILD_DEPENDENCY_OF')).toHaveLength(2);
    const ref = cdx.components.find((c) => c.name === 'libsvm')?.['bom-ref'];
    expect(ref).toBe('meson-subproject:linux-x64:libsvm@3.24');
    expect(cdx.dependencies.filter((d) => d.dependsOn?.includes(ref as string))).toHaveLength(2);
  });

  it('lists every model file inside the models archive with its sha256', async () => {
    const ctx = await overCopy();
    expect((await runSteps([sbomStep], ctx)).error).toBeUndefined();
    const { spdx, cdx } = await readDocs(ctx.releaseDir);
    const archive = ctx.manifest.artifacts.find((a) => a.kind === 'models-archive');
    const files = archive?.meta?.files as Array<{ path: string; sha256: string }>;
    expect(files.length).toBeGreaterThan(0);
    const archivePkg = spdx.packages.find((p) => p.packageFileName === archive?.path);
    const contained = spdx.relationships.filter((r) => r.spdxElementId === archivePkg?.SPDXID && r.relationshipType === 'CONTAINS').map((r) => r.relatedSpdxElement);
    expect(contained).toHaveLength(files.length);
    for (const f of files) {
      const spdxFile = spdx.files.find((x) => x.fileName === `./${f.path}`);
      expect(spdxFile?.checksums).toContainEqual({ algorithm: 'SHA256', checksumValue: f.sha256 });
      expect(spdxFile?.checksums.map((c) => c.algorithm)).toContain('SHA1');
      expect(contained).toContain(spdxFile?.SPDXID);
      const cdxFile = cdx.components.find((c) => c.name === archive?.path)?.components?.find((c) => c.name === f.path);
      expect(cdxFile?.hashes).toContainEqual({ alg: 'SHA-256', content: f.sha256 });
    }
  });

  it('is deterministic: the same inputs give byte-identical documents, wherever the release folder is', async () => {
    const a = await overCopy();
    const b = await overCopy();
    expect((await runSteps([sbomStep], a)).error).toBeUndefined();
    expect((await runSteps([sbomStep], b)).error).toBeUndefined();
    const da = await readDocs(a.releaseDir);
    const db = await readDocs(b.releaseDir);
    expect(db.spdxText).toBe(da.spdxText);
    expect(db.cdxText).toBe(da.cdxText);
    // a re-run with the same inputs keeps the documents
    const again = await runSteps([sbomStep], a);
    expect(again.steps[0]?.state).toBe('skipped');
    // another release time is another document, with another namespace and serial number
    const c = await overCopy((m) => {
      m.plan.timestamp = '2030-01-02T03:04:05Z';
    });
    expect((await runSteps([sbomStep], c)).error).toBeUndefined();
    const dc = await readDocs(c.releaseDir);
    expect(dc.spdx.creationInfo.created).toBe('2030-01-02T03:04:05Z');
    expect(dc.spdx.documentNamespace).not.toBe(da.spdx.documentNamespace);
    expect(dc.cdx.serialNumber).not.toBe(da.cdx.serialNumber);
  });
});

/** A build step that stages the given files as release files of the given kinds. */
function stage(files: Array<{ path: string; content: string | Buffer; kind: 'npm-tarball' | 'native-library' | 'native-cli'; meta?: Json; platform?: string }>): Step<ReleaseOptions> {
  return {
    name: 'build-npm',
    description: 'test files',
    async run(ctx) {
      for (const f of files) {
        await writeFile(path.join(ctx.releaseDir, f.path), f.content);
        await ctx.addArtifact(f.path, f.kind, f.platform ?? 'any', f.meta);
      }
    },
  };
}

const NATIVE: NativeBuild = {
  project: { name: 'libx', version: '1.0.0' },
  source: { commit: 'd'.repeat(40), fingerprint: 'e'.repeat(64), path: 'native' },
  buildtype: 'release',
  options: { enable_float: true },
  compilers: [{ language: 'c', id: 'gcc', version: '12.2.0' }],
  mesonVersion: '1.0.1',
  targets: { library: 'x', cli: 'x', subprojects: [] },
};

/** A workspace project releasing one package (packages/app), its lockfile, and a context whose plan releases it. */
async function smallRelease(lockPackages: Record<string, Json>, pkg: Json) {
  const dir = await tempDir('mcp-release-sbom-small-');
  const root = { name: 'root', private: true, workspaces: ['packages/app'] };
  await writeFile(path.join(dir, 'package.json'), JSON.stringify(root));
  await mkdir(path.join(dir, 'packages', 'app'), { recursive: true });
  await writeFile(path.join(dir, 'packages', 'app', 'package.json'), JSON.stringify(pkg));
  const packages = { '': root, 'packages/app': pkg, [`node_modules/${String(pkg.name)}`]: { resolved: 'packages/app', link: true }, ...lockPackages };
  await writeFile(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'root', lockfileVersion: 3, requires: true, packages }));
  const manifest = newManifest({ ...structuredClone(TEST_PLAN), packages: [{ name: String(pkg.name), version: String(pkg.version), path: 'packages/app' }] });
  return releaseContext(path.join(dir, 'out'), {}, { repoRoot: dir, manifest });
}

const SRI = `sha512-${Buffer.alloc(64, 7).toString('base64')}`;

describe('sbom step on small inputs', () => {
  it('records a license that is not a valid SPDX expression as NOASSERTION, with a warning naming the package', async () => {
    const ctx = await smallRelease(
      { 'node_modules/odd': { version: '2.0.0', resolved: 'https://registry.example.invalid/odd/-/odd-2.0.0.tgz', integrity: SRI, license: 'SEE LICENSE IN LICENSE.txt' } },
      { name: 'app', version: '1.0.0', license: 'Apache-2.0', dependencies: { odd: '^2.0.0' } },
    );
    const r = await runSteps([stage([{ path: 'app-1.0.0.tgz', content: 'tarball', kind: 'npm-tarball', meta: { name: 'app', version: '1.0.0' } }]), sbomStep], ctx);
    expect(r.error).toBeUndefined();
    expect(ctx.log.lines).toContainEqual(expect.stringMatching(/^warning: odd@2\.0\.0 declares the license "SEE LICENSE IN LICENSE\.txt", which is not a valid SPDX license expression; the SBOM records its license as NOASSERTION$/));
    const { spdx, cdx, cdxText } = await readDocs(ctx.releaseDir);
    expect(spdx.packages.find((p) => p.name === 'odd')).toMatchObject({ licenseDeclared: 'NOASSERTION', licenseConcluded: 'NOASSERTION' });
    expect(spdx.packages.find((p) => p.name === 'app')).toMatchObject({ licenseDeclared: 'Apache-2.0' });
    const odd = cdx.components.find((c) => c.name === 'odd');
    expect(odd).toBeDefined();
    expect(odd?.licenses).toBeUndefined();
    expect(validateSbomSpdx(spdx)).toEqual([]);
    expect(await validateSbomCycloneDx(cdxText)).toEqual([]);
  });

  it('refuses a lockfile out of sync with package.json and suggests npm install; writes nothing', async () => {
    const ctx = await smallRelease({ 'node_modules/odd': { version: '1.0.0', integrity: SRI, license: 'MIT' } }, { name: 'app', version: '1.0.0', dependencies: { odd: '^2.0.0' } });
    const r = await runSteps([sbomStep], ctx);
    expect(r.error).toMatchObject({ code: 'SBOM_LOCKFILE_OUT_OF_SYNC', message: expect.stringContaining('odd@^2.0.0'), hint: expect.stringContaining('npm install') });
    await expect(readFile(path.join(ctx.releaseDir, SBOM_SPDX_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a release without a lockfile', async () => {
    const ctx = await smallRelease({}, { name: 'app', version: '1.0.0' });
    await rm(path.join(ctx.repoRoot, 'package-lock.json'));
    expect((await runSteps([sbomStep], ctx)).error).toMatchObject({ code: 'SBOM_LOCKFILE_MISSING', hint: expect.stringContaining('npm install') });
  });

  it('refuses a native binary that is not ELF, naming the file', async () => {
    const ctx = await releaseContext(await tempDir(), {}, { manifest: { ...newManifest(structuredClone(TEST_PLAN)), native: { 'linux-x64': NATIVE } } });
    const r = await runSteps([stage([{ path: 'libx-linux-x64.so.1', content: '#!/bin/sh\necho not a library\n', kind: 'native-library', platform: 'linux-x64', meta: { needed: ['libc.so.6'] } }]), sbomStep], ctx);
    expect(r.error).toMatchObject({
      code: 'SBOM_NATIVE_NOT_ELF',
      message: 'the native-library libx-linux-x64.so.1 (linux-x64) is not an ELF binary: it starts with the bytes 23212f62, not the ELF magic 7f454c46',
      hint: expect.stringContaining('re-run build-npm'),
    });
  });

  it('reports schema errors as readable lines', async () => {
    expect(validateSbomSpdx({ spdxVersion: 'SPDX-2.3', packages: [{ name: 'x' }] })).toEqual(
      expect.arrayContaining(['SPDXID is required', 'creationInfo is required', 'packages[0].SPDXID is required', 'packages[0].downloadLocation is required']),
    );
    expect(await validateSbomCycloneDx(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', components: [{ type: 'bogus', name: 'x' }] }))).toEqual([
      expect.stringContaining('components[0].type must be one of'),
    ]);
  });
});

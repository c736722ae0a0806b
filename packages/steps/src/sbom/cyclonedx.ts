import { Enums, Models, Serialize, Spec, SPDX, Validation } from '@cyclonedx/cyclonedx-library';
import { describeSchemaErrors, type Artifact } from '@mcp-release/manifest';
import type { ErrorObject } from 'ajv';
import { StepError } from '../errors.js';
import { contentUuid } from './ids.js';
import { nativeFacts, nativeSubprojects, neededRelease, type SbomInventory } from './inventory.js';
import type { SbomDigest, SbomNpmPackage } from './npm.js';
import { SBOM_FACT_PREFIX, SBOM_TOOL } from './spdx.js';

const HASH: Record<SbomDigest['algorithm'], Enums.HashAlgorithm> = {
  sha1: Enums.HashAlgorithm['SHA-1'],
  sha256: Enums.HashAlgorithm['SHA-256'],
  sha384: Enums.HashAlgorithm['SHA-384'],
  sha512: Enums.HashAlgorithm['SHA-512'],
};

function fileHashes(c: Models.Component, a: Pick<Artifact, 'sha256' | 'sha512'>): void {
  c.hashes.set(Enums.HashAlgorithm['SHA-256'], a.sha256);
  c.hashes.set(Enums.HashAlgorithm['SHA-512'], a.sha512);
}

function facts(c: Models.Component, list: Array<[string, string]>): void {
  for (const [k, v] of list) c.properties.add(new Models.Property(`${SBOM_FACT_PREFIX}${k}`, v));
}

function npmComponent(p: SbomNpmPackage): Models.Component {
  const c = new Models.Component(Enums.ComponentType.Library, p.name, { version: p.version, bomRef: p.purl, purl: p.purl });
  for (const d of p.digests) c.hashes.set(HASH[d.algorithm], d.hex);
  if (p.license) c.licenses.add(SPDX.isSupportedSpdxId(p.license) ? new Models.SpdxLicense(p.license) : new Models.LicenseExpression(p.license));
  if (p.resolved && /^https?:\/\//.test(p.resolved)) c.externalReferences.add(new Models.ExternalReference(p.resolved, Enums.ExternalReferenceType.Distribution));
  if (p.workspace !== undefined) facts(c, [['npm:workspace', p.workspace || '.']]);
  return c;
}

const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));

/**
 * The CycloneDX 1.6 document of a release, built with @cyclonedx/cyclonedx-library. Every listed
 * release file is a component named by its file name with SHA-256 and SHA-512 hashes: the npm
 * tarball holds its npm package as a nested component, the models archive its model files. The
 * native library and CLI carry their build facts as properties; npm dependencies (purl, license,
 * lockfile integrity), the system libraries the binaries load and the meson subprojects are
 * components of their own, tied together in the dependency graph.
 */
export function renderSbomCycloneDx(inv: SbomInventory): string {
  const bom = new Models.Bom();
  bom.version = 1;
  bom.metadata.timestamp = new Date(inv.release.timestamp);
  bom.metadata.lifecycles.add(Enums.LifecyclePhase.Build);
  bom.metadata.tools.components.add(new Models.Component(Enums.ComponentType.Application, SBOM_TOOL));
  const root = new Models.Component(Enums.ComponentType.Application, `release-${inv.release.tag}`, { version: inv.release.tag, bomRef: `release:${inv.release.tag}` });
  facts(root, [
    ['release:tag', inv.release.tag],
    ['release:commit', inv.release.commit],
  ]);
  bom.metadata.component = root;

  const byRef = new Map<string, Models.Component>();
  const add = (c: Models.Component, parent?: Models.Component): Models.Component => {
    const ref = c.bomRef.value as string;
    const known = byRef.get(ref);
    if (known) return known;
    byRef.set(ref, c);
    (parent ? parent.components : bom.components).add(c);
    return c;
  };
  const fileComponent = (a: Artifact, type: Enums.ComponentType, version?: string): Models.Component => {
    const c = new Models.Component(type, a.path, { bomRef: `file:${a.path}`, ...(version ? { version } : {}) });
    fileHashes(c, a);
    facts(c, [
      ['release:kind', a.kind],
      ['release:platform', a.platform],
    ]);
    root.dependencies.add(c.bomRef);
    return add(c);
  };

  // npm: each planned package nested in its tarball, every installed package at the top
  const nested = new Map<string, Models.Component>();
  for (const [id, tarball] of Object.entries(inv.tarballs)) nested.set(id, fileComponent(tarball, Enums.ComponentType.File));
  for (const p of inv.npm?.packages ?? []) {
    const c = npmComponent(p);
    const holder = nested.get(p.id);
    if (holder) fileHashes(c, inv.tarballs[p.id] as Artifact);
    add(c, holder);
    if (inv.npm?.roots.includes(p.id) && !holder) root.dependencies.add(c.bomRef);
  }
  const purls = new Map((inv.npm?.packages ?? []).map((p) => [p.id, p.purl]));
  for (const p of inv.npm?.packages ?? []) {
    const c = byRef.get(p.purl) as Models.Component;
    for (const d of p.dependsOn) {
      const target = byRef.get(purls.get(d) ?? '');
      if (target) c.dependencies.add(target.bomRef);
    }
  }

  // native binaries with their build facts, the libraries they load, their meson subprojects
  const binaries = new Map<string, Models.Component>();
  for (const bin of inv.native) {
    const c = fileComponent(bin.artifact, bin.role === 'library' ? Enums.ComponentType.Library : Enums.ComponentType.Application, bin.build.project.version);
    facts(c, nativeFacts(bin));
    binaries.set(bin.artifact.path, c);
  }
  for (const bin of inv.native) {
    const c = binaries.get(bin.artifact.path) as Models.Component;
    const platform = bin.artifact.platform;
    for (const n of bin.needed) {
      const own = neededRelease(inv, bin, n);
      if (own) {
        c.dependencies.add((binaries.get(own.artifact.path) as Models.Component).bomRef);
        continue;
      }
      const lib = new Models.Component(Enums.ComponentType.Library, n, {
        bomRef: `elf:${platform}:${n}`,
        description: `shared library of the ${platform} system that release binaries load (ELF NEEDED); not part of the release`,
      });
      facts(lib, [['platform', platform]]);
      c.dependencies.add(add(lib).bomRef);
    }
    for (const s of nativeSubprojects(bin)) {
      const sub = new Models.Component(Enums.ComponentType.Library, s.name, {
        bomRef: `meson-subproject:${platform}:${s.name}${s.version ? `@${s.version}` : ''}`,
        ...(s.version ? { version: s.version } : {}),
        description: `meson subproject of ${bin.build.project.name}, built with it for ${platform}`,
      });
      facts(sub, [['platform', platform]]);
      c.dependencies.add(add(sub).bomRef);
    }
  }

  // models archives and the model files inside
  for (const m of inv.models) {
    const archive = fileComponent(m.artifact, Enums.ComponentType.File);
    for (const f of m.files) {
      const c = new Models.Component(Enums.ComponentType.File, f.path, { bomRef: `file:${m.artifact.path}#${f.path}` });
      c.hashes.set(Enums.HashAlgorithm['SHA-1'], f.sha1);
      c.hashes.set(Enums.HashAlgorithm['SHA-256'], f.sha256);
      facts(c, [['archive:size', String(f.size)]]);
      add(c, archive);
    }
  }

  // every other release file
  for (const a of inv.files) {
    if (byRef.has(`file:${a.path}`)) continue;
    fileComponent(a, Enums.ComponentType.File);
  }

  // The serial number is derived from the document without it.
  const unnumbered = serializer.serialize(bom, { sortLists: true, space: 2 });
  bom.serialNumber = `urn:uuid:${contentUuid(unnumbered)}`;
  return `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`;
}

/** Errors of a CycloneDX 1.6 JSON document against the strict schema, as readable lines. */
export async function validateSbomCycloneDx(json: string): Promise<string[]> {
  let result: unknown;
  try {
    result = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json);
  } catch (err) {
    if (err instanceof Validation.MissingOptionalDependencyError) {
      throw new StepError('SBOM_VALIDATOR_MISSING', `the CycloneDX validator cannot run: ${err.message}`, {
        cause: err,
        hint: 'install the validator dependencies of @cyclonedx/cyclonedx-library (npm install ajv ajv-formats ajv-formats-draft2019)',
      });
    }
    throw err;
  }
  if (result === null || result === undefined) return [];
  if (Array.isArray(result)) return describeSchemaErrors(result as ErrorObject[]);
  return [JSON.stringify(result)];
}

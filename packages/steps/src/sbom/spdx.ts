import Ajv from 'ajv';
import { canonicalJson, describeSchemaErrors, type Artifact } from '@mcp-release/manifest';
import schema from '../../../../policies/schemas/spdx-2.3.schema.json' with { type: 'json' };
import { byCodePoint, contentUuid, SpdxIds } from './ids.js';
import { nativeFacts, nativeSubprojects, neededRelease, type SbomInventory } from './inventory.js';
import type { SbomDigest } from './npm.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

/** The tool named in both documents. */
export const SBOM_TOOL = 'mcp-release';
/** Namespace of the `name=value` facts (SPDX annotations, CycloneDX properties). */
export const SBOM_FACT_PREFIX = 'mcp-release:';

interface SpdxChecksum {
  algorithm: 'SHA1' | 'SHA256' | 'SHA384' | 'SHA512';
  checksumValue: string;
}
interface SpdxAnnotation {
  annotationDate: string;
  annotationType: 'OTHER';
  annotator: string;
  comment: string;
}
interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  packageFileName?: string;
  downloadLocation: string;
  filesAnalyzed: false;
  primaryPackagePurpose: 'LIBRARY' | 'APPLICATION' | 'ARCHIVE' | 'FILE';
  checksums?: SpdxChecksum[];
  externalRefs?: Array<{ referenceCategory: 'PACKAGE-MANAGER'; referenceType: 'purl'; referenceLocator: string }>;
  licenseConcluded: 'NOASSERTION';
  licenseDeclared: string;
  copyrightText: 'NOASSERTION';
  sourceInfo?: string;
  comment?: string;
  annotations?: SpdxAnnotation[];
}
interface SpdxFile {
  SPDXID: string;
  fileName: string;
  checksums: SpdxChecksum[];
  licenseConcluded: 'NOASSERTION';
  copyrightText: 'NOASSERTION';
  comment: string;
}
interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: 'DESCRIBES' | 'DEPENDS_ON' | 'DYNAMIC_LINK' | 'BUILD_DEPENDENCY_OF' | 'CONTAINS';
  relatedSpdxElement: string;
}

const ALGORITHMS: Record<SbomDigest['algorithm'], SpdxChecksum['algorithm']> = { sha1: 'SHA1', sha256: 'SHA256', sha384: 'SHA384', sha512: 'SHA512' };

function fileChecksums(a: Pick<Artifact, 'sha256' | 'sha512'>): SpdxChecksum[] {
  return [
    { algorithm: 'SHA256', checksumValue: a.sha256 },
    { algorithm: 'SHA512', checksumValue: a.sha512 },
  ];
}

/**
 * The SPDX 2.3 document (canonical JSON) of a release. Every listed release file is a package with
 * `packageFileName` set to its file name and its SHA256 and SHA512; the document DESCRIBES each.
 * A planned npm package is the package of its tarball; its dependencies are packages with their
 * purl, declared license and lockfile integrity, tied by DEPENDS_ON. Native binaries carry their
 * build facts as annotations, DYNAMIC_LINK the libraries they need and have their meson subprojects
 * as BUILD_DEPENDENCY_OF. The model files are files the archive CONTAINS.
 */
export function renderSbomSpdx(inv: SbomInventory): string {
  const ids = new SpdxIds();
  const created = inv.release.timestamp;
  const annotate = (facts: Array<[string, string]>): SpdxAnnotation[] =>
    facts.map(([k, v]) => ({ annotationDate: created, annotationType: 'OTHER', annotator: `Tool: ${SBOM_TOOL}`, comment: `${SBOM_FACT_PREFIX}${k}=${v}` }));
  const packages: SpdxPackage[] = [];
  const files: SpdxFile[] = [];
  const relationships: SpdxRelationship[] = [];
  const described = new Set<string>();
  const fileId = (path: string): string => ids.id(`file:${path}`, `file-${path}`);
  const npmRef = (id: string): string => ids.id(`npm:${id}`, `npm-${id}`);

  // npm: the planned packages (one per tarball) and everything they install
  for (const p of inv.npm?.packages ?? []) {
    const tarball = inv.tarballs[p.id];
    const spdxId = npmRef(p.id);
    const planned = inv.npm?.roots.includes(p.id) ?? false;
    packages.push({
      SPDXID: spdxId,
      name: p.name,
      versionInfo: p.version,
      ...(tarball ? { packageFileName: tarball.path } : {}),
      downloadLocation: p.resolved ?? 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'LIBRARY',
      ...(tarball
        ? { checksums: fileChecksums(tarball) }
        : p.digests.length
          ? { checksums: p.digests.map((d) => ({ algorithm: ALGORITHMS[d.algorithm], checksumValue: d.hex })) }
          : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: p.license ?? 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      ...(planned ? { comment: `released npm package, packed from the workspace ${p.workspace || '.'}${tarball ? ` into ${tarball.path}` : ''}` } : {}),
    });
    if (planned) described.add(spdxId);
    for (const d of p.dependsOn) relationships.push({ spdxElementId: spdxId, relationshipType: 'DEPENDS_ON', relatedSpdxElement: npmRef(d) });
  }
  const asNpm = new Set(Object.values(inv.tarballs).map((a) => a.path));

  // native binaries: build facts, the libraries they load, the meson subprojects built with them
  const natives = new Set(inv.native.map((b) => b.artifact.path));
  for (const bin of inv.native) {
    const a = bin.artifact;
    const b = bin.build;
    const id = fileId(a.path);
    packages.push({
      SPDXID: id,
      name: a.path,
      versionInfo: b.project.version,
      packageFileName: a.path,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: bin.role === 'library' ? 'LIBRARY' : 'APPLICATION',
      checksums: fileChecksums(a),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      sourceInfo: `built by meson${b.mesonVersion ? ` ${b.mesonVersion}` : ''} (buildtype ${b.buildtype}) from ${b.project.name} ${b.project.version}${b.source.path ? ` in ${b.source.path}` : ''} at commit ${b.source.commit ?? 'unknown'}, with ${(b.compilers ?? []).map((c) => `${c.language} ${c.id} ${c.version}`).join(', ') || 'compilers not recorded'}`,
      comment: `native ${bin.role === 'library' ? 'shared library' : 'command-line program'} for ${a.platform}`,
      annotations: annotate(nativeFacts(bin)),
    });
    described.add(id);
    for (const n of bin.needed) {
      const own = neededRelease(inv, bin, n);
      const related = own ? fileId(own.artifact.path) : ids.id(`elf:${a.platform}:${n}`, `elf-${a.platform}-${n}`);
      if (!own && !packages.some((p) => p.SPDXID === related)) {
        packages.push({
          SPDXID: related,
          name: n,
          downloadLocation: 'NOASSERTION',
          filesAnalyzed: false,
          primaryPackagePurpose: 'LIBRARY',
          licenseConcluded: 'NOASSERTION',
          licenseDeclared: 'NOASSERTION',
          copyrightText: 'NOASSERTION',
          comment: `shared library of the ${a.platform} system that release binaries load (ELF NEEDED); not part of the release`,
        });
      }
      relationships.push({ spdxElementId: id, relationshipType: 'DYNAMIC_LINK', relatedSpdxElement: related });
    }
    for (const s of nativeSubprojects(bin)) {
      const sid = ids.id(`meson:${a.platform}:${s.name}@${s.version ?? ''}`, `meson-${a.platform}-${s.name}${s.version ? `-${s.version}` : ''}`);
      if (!packages.some((p) => p.SPDXID === sid)) {
        packages.push({
          SPDXID: sid,
          name: s.name,
          ...(s.version ? { versionInfo: s.version } : {}),
          downloadLocation: 'NOASSERTION',
          filesAnalyzed: false,
          primaryPackagePurpose: 'LIBRARY',
          licenseConcluded: 'NOASSERTION',
          licenseDeclared: 'NOASSERTION',
          copyrightText: 'NOASSERTION',
          comment: `meson subproject of ${b.project.name}, built with it for ${a.platform}`,
        });
      }
      relationships.push({ spdxElementId: sid, relationshipType: 'BUILD_DEPENDENCY_OF', relatedSpdxElement: id });
    }
  }

  // models archives and the files inside them
  const archives = new Set(inv.models.map((m) => m.artifact.path));
  for (const m of inv.models) {
    const id = fileId(m.artifact.path);
    packages.push({
      SPDXID: id,
      name: m.artifact.path,
      packageFileName: m.artifact.path,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'ARCHIVE',
      checksums: fileChecksums(m.artifact),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      comment: `archive of ${m.files.length} model file(s)`,
    });
    described.add(id);
    for (const f of m.files) {
      const fid = ids.id(`model:${m.artifact.path}:${f.path}`, `model-${f.path}`);
      files.push({
        SPDXID: fid,
        fileName: `./${f.path}`,
        checksums: [
          { algorithm: 'SHA1', checksumValue: f.sha1 },
          { algorithm: 'SHA256', checksumValue: f.sha256 },
        ],
        licenseConcluded: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        comment: `${f.size} bytes, inside ${m.artifact.path}`,
      });
      relationships.push({ spdxElementId: id, relationshipType: 'CONTAINS', relatedSpdxElement: fid });
    }
  }

  // every other release file, by name and digests
  for (const a of inv.files) {
    if (asNpm.has(a.path) || natives.has(a.path) || archives.has(a.path)) continue;
    const id = fileId(a.path);
    packages.push({
      SPDXID: id,
      name: a.path,
      packageFileName: a.path,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'FILE',
      checksums: fileChecksums(a),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      comment: `release file (${a.kind}, ${a.platform})`,
    });
    described.add(id);
  }
  for (const id of described) relationships.push({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: id });

  const name = `release-${inv.release.tag}`;
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name,
    documentNamespace: '',
    creationInfo: {
      created,
      creators: [`Tool: ${SBOM_TOOL}`],
      comment: `release ${inv.release.tag} of commit ${inv.release.commit}: every release file with its digests, the npm packages their tarballs install (from ${inv.npm?.lockfile ?? 'no lockfile'}), the native build and the model files`,
    },
    packages: packages.sort((x, y) => byCodePoint(x.SPDXID, y.SPDXID)),
    files: files.sort((x, y) => byCodePoint(x.SPDXID, y.SPDXID)),
    relationships: dedupe(relationships).sort(
      (x, y) => byCodePoint(x.spdxElementId, y.spdxElementId) || byCodePoint(x.relationshipType, y.relationshipType) || byCodePoint(x.relatedSpdxElement, y.relatedSpdxElement),
    ),
  };
  for (const p of doc.packages) p.annotations?.sort((x, y) => byCodePoint(x.comment, y.comment));
  // The namespace is derived from everything else in the document.
  doc.documentNamespace = `https://spdx.org/spdxdocs/${name.replace(/[^A-Za-z0-9.-]+/g, '-')}-${contentUuid(canonicalJson(doc))}`;
  return canonicalJson(doc);
}

function dedupe(list: SpdxRelationship[]): SpdxRelationship[] {
  const seen = new Set<string>();
  return list.filter((r) => {
    const k = `${r.spdxElementId} ${r.relationshipType} ${r.relatedSpdxElement}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Schema errors of an SPDX 2.3 document (the official JSON schema, draft-07), as readable lines. */
export function validateSbomSpdx(doc: unknown): string[] {
  return validate(doc) ? [] : describeSchemaErrors(validate.errors);
}

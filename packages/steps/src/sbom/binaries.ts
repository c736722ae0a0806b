import { open } from 'node:fs/promises';
import { resolveInside, type Artifact, type Manifest, type NativeBuild } from '@mcp-release/manifest';
import { tailLines, type Exec } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';

/** A native release file (the shared library or the CLI) with what it was built from and links against. */
export interface SbomNativeBinary {
  artifact: Artifact;
  role: 'library' | 'cli';
  /** The meson target it was built as. */
  target?: string;
  soname?: string;
  /** Other names of the library (libx.so, libx.so.3) that the install made as symlinks. */
  links: string[];
  /** ELF NEEDED entries: the shared libraries the binary loads at run time. */
  needed: string[];
  /** The build record of its platform (manifest.native.<platform>). */
  build: NativeBuild;
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
}

/** Reads the first four bytes only: a release file is never read whole. */
async function assertElf(file: string, artifact: Artifact): Promise<void> {
  let head: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(4);
      const { bytesRead } = await handle.read(buf, 0, 4, 0);
      head = buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StepError('SBOM_RELEASE_FILE_MISSING', `${artifact.path} is in the manifest but not in the release folder`, {
        cause: err,
        hint: `re-run ${artifact.producedBy} to stage it again`,
      });
    }
    throw err;
  }
  if (!head.equals(ELF_MAGIC)) {
    const seen = head.length ? `it starts with the bytes ${head.toString('hex')}, not the ELF magic 7f454c46` : 'it is empty';
    throw new StepError('SBOM_NATIVE_NOT_ELF', `the ${artifact.kind} ${artifact.path} (${artifact.platform}) is not an ELF binary: ${seen}`, {
      hint: `the SBOM reads the shared libraries a native binary needs from its ELF dynamic section; stage the ELF file meson built (re-run ${artifact.producedBy} on a Linux runner) instead of ${artifact.path}`,
    });
  }
}

/** NEEDED and SONAME entries of the dynamic section, from `readelf -d`. */
export async function readDynamicSection(exec: Exec, file: string, label: string): Promise<{ needed: string[]; soname?: string }> {
  const r = await exec('readelf', ['-d', '-W', file]);
  if (r.exitCode !== 0) {
    throw new StepError('SBOM_READELF_FAILED', `readelf -d could not read ${label} (exit status ${String(r.exitCode)})`, {
      details: tailLines(`${r.stdout}\n${r.stderr}`, 10),
      hint: 'install binutils (Debian/Ubuntu: apt-get install binutils) and check that the file is a complete ELF binary',
    });
  }
  const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] as string);
  const soname = /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(r.stdout)?.[1];
  return { needed, ...(soname ? { soname } : {}) };
}

/**
 * The native library and CLI of the release with their build record. NEEDED entries come from the
 * artifact's meta as build-native recorded them; when the meta lacks them, `readelf -d` reads them
 * from the release file. A native file that is not ELF is refused.
 */
export async function collectNativeBinaries(manifest: Manifest, releaseDir: string, exec: Exec): Promise<SbomNativeBinary[]> {
  const out: SbomNativeBinary[] = [];
  for (const artifact of manifest.artifacts) {
    if (artifact.kind !== 'native-library' && artifact.kind !== 'native-cli') continue;
    const build = manifest.native?.[artifact.platform];
    if (!build) {
      throw new StepError('SBOM_NATIVE_BUILD_UNKNOWN', `the manifest has no native build record for ${artifact.platform}, so ${artifact.path} cannot be described (source commit, options, compilers)`, {
        hint: `re-run build-native for ${artifact.platform}: it records the build in the manifest under native.${artifact.platform}`,
      });
    }
    const file = await resolveInside(releaseDir, artifact.path, 'release file');
    await assertElf(file, artifact);
    const meta = artifact.meta ?? {};
    let needed = strings(meta.needed);
    let soname = typeof meta.soname === 'string' ? meta.soname : undefined;
    if (!needed) {
      const dyn = await readDynamicSection(exec, file, artifact.path);
      needed = dyn.needed;
      soname ??= dyn.soname;
    }
    out.push({
      artifact,
      role: artifact.kind === 'native-library' ? 'library' : 'cli',
      ...(typeof meta.target === 'string' ? { target: meta.target } : {}),
      ...(soname ? { soname } : {}),
      links: [...(strings(meta.links) ?? [])].sort(),
      needed: [...new Set(needed)].sort(),
      build,
    });
  }
  return out.sort((a, b) => (a.artifact.path < b.artifact.path ? -1 : a.artifact.path > b.artifact.path ? 1 : 0));
}

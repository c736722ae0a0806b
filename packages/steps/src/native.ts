import { createWriteStream } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { create as createTar } from 'tar';
import { hashFile } from '@mcp-release/manifest';
import { execChecked, tailLines, type Exec } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import { listFiles } from './source.js';

/** Finds the meson project: the folder itself, or `libvmaf/` inside it as in Netflix's tree. */
export async function findMesonProject(source: string): Promise<string> {
  const st = await stat(source).catch(() => undefined);
  if (!st) {
    throw new StepError('NATIVE_SOURCE_MISSING', `the native source tree ${source} does not exist`, {
      hint: 'pass --native-source PATH (a vmaf checkout, or test/fixtures/native) or fix `native.source` in the release policy',
    });
  }
  if (!st.isDirectory()) {
    throw new StepError('NATIVE_SOURCE_MISSING', `the native source ${source} is not a folder`, { hint: 'point --native-source at the root of a vmaf checkout' });
  }
  for (const candidate of [source, path.join(source, 'libvmaf')]) {
    if (await stat(path.join(candidate, 'meson.build')).catch(() => undefined)) return candidate;
  }
  throw new StepError('NATIVE_NOT_MESON', `${source} has no meson.build, neither at its root nor in libvmaf/`, {
    hint: 'point --native-source at a vmaf checkout (it has libvmaf/meson.build) or another meson project',
  });
}

/** Turns policy/CLI options into `-Dname=value` arguments, sorted for determinism. */
export function mesonOptionArgs(options: Record<string, string | boolean | number> | undefined): string[] {
  return Object.keys(options ?? {})
    .sort()
    .map((k) => `-D${k}=${String((options ?? {})[k])}`);
}

/** Extracts the lines that explain a meson configure failure from its log. */
export async function configureExcerpt(buildDir: string, output: string): Promise<string[]> {
  const log = await readFile(path.join(buildDir, 'meson-logs', 'meson-log.txt'), 'utf8').catch(() => '');
  const errors = `${output}\n${log}`.split('\n').filter((l) => /ERROR|error:|Unknown option|not found/i.test(l));
  const lines = [...new Set(errors.map((l) => l.trim()).filter(Boolean))].slice(0, 8);
  return lines.length ? lines : tailLines(log || output, 12);
}

/** `C compiler for the host machine: cc (gcc 12.2.0 "cc (Debian 12.2.0-14) 12.2.0")` */
export function parseCompilers(mesonLog: string): Array<{ language: string; id: string; version: string }> {
  const out = new Map<string, { language: string; id: string; version: string }>();
  for (const m of mesonLog.matchAll(/^([\w+#]+) compiler for the host machine: \S+ \((\S+) ([^\s")]+)/gm)) {
    const language = (m[1] as string).toLowerCase();
    out.set(language, { language, id: m[2] as string, version: m[3] as string });
  }
  return [...out.values()].sort((a, b) => (a.language < b.language ? -1 : 1));
}

export interface MesonTarget {
  name: string;
  type: string;
  filename: string[];
  installed: boolean;
  install_filename?: Array<string | null>;
}

export interface MesonOption {
  name: string;
  value: unknown;
  section: string;
  type: string;
}

export interface MesonIntrospection {
  targets: MesonTarget[];
  buildoptions: MesonOption[];
  projectinfo: { version: string; descriptive_name: string; subprojects: Array<{ name: string; version: string; descriptive_name?: string }> };
}

export async function introspect(exec: Exec, buildDir: string): Promise<MesonIntrospection> {
  const r = await execChecked(exec, 'meson', ['introspect', buildDir, '--targets', '--buildoptions', '--projectinfo'], {
    code: 'NATIVE_INTROSPECT_FAILED',
    what: 'meson introspect failed',
    hint: 'check that meson 0.60 or newer is installed',
  });
  return JSON.parse(r.stdout) as MesonIntrospection;
}

/** Picks the installed target of a type, by name when one is configured. */
export function pickTarget(targets: MesonTarget[], type: 'shared library' | 'executable', wanted: string | undefined, policyKey: string): MesonTarget {
  const candidates = targets.filter((t) => t.type === type && t.installed);
  if (wanted) {
    const found = candidates.find((t) => t.name === wanted);
    if (!found) {
      throw new StepError('NATIVE_TARGET_MISSING', `the build has no installed ${type} target named ${JSON.stringify(wanted)}`, {
        details: [`installed ${type} targets: ${candidates.map((t) => t.name).join(', ') || '(none)'}`],
        hint: `set native.${policyKey} in the release policy to one of the targets above, or enable the option that builds it`,
      });
    }
    return found;
  }
  if (candidates.length !== 1) {
    throw new StepError(candidates.length ? 'NATIVE_TARGET_AMBIGUOUS' : 'NATIVE_TARGET_MISSING', `expected one installed ${type} target, found ${candidates.length}`, {
      details: [`installed ${type} targets: ${candidates.map((t) => t.name).join(', ') || '(none)'}`],
      hint: `name the one to release with native.${policyKey} in the release policy`,
    });
  }
  return candidates[0] as MesonTarget;
}

/** `libvmaf.so.3.0.0` → `libvmaf-linux-x64.so.3.0.0`; `vmaf` → `vmaf-linux-x64`. */
export function releaseName(file: string, platform: string): string {
  const base = path.basename(file);
  const dot = base.indexOf('.');
  return dot > 0 ? `${base.slice(0, dot)}-${platform}${base.slice(dot)}` : `${base}-${platform}`;
}

export interface ElfInfo {
  soname?: string;
  needed: string[];
}

/** SONAME and NEEDED entries, from `readelf -d`; undefined when the file is not ELF. */
export async function readElf(exec: Exec, file: string): Promise<ElfInfo | undefined> {
  const head = await readFile(file).then((b) => b.subarray(0, 4));
  if (!(head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46)) return undefined;
  const r = await exec('readelf', ['-d', '-W', file]).catch(() => undefined);
  if (!r || r.exitCode !== 0) return { needed: [] };
  const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] as string);
  const soname = /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(r.stdout)?.[1];
  return { ...(soname ? { soname } : {}), needed };
}

/** Names in the same folder that are symlinks resolving to `file` (libx.so, libx.so.3). */
export async function linksTo(file: string): Promise<string[]> {
  const dir = path.dirname(file);
  const real = await realpath(file);
  const names: string[] = [];
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    if ((await lstat(p)).isSymbolicLink() && (await realpath(p).catch(() => '')) === real) names.push(name);
  }
  return names.sort();
}

/** Rewrites the gzip header's OS byte so that the archive is the same on every platform. */
function fixGzipHeader(): Transform {
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (first && chunk.length >= 10) {
        chunk[9] = 3;
        first = false;
      }
      done(null, chunk);
    },
  });
}

export interface ArchiveEntry {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Writes a deterministic `.tar.gz` of a folder: entries sorted by name under `prefix/`, one fixed
 * mtime, uid/gid 0 and modes 0644/0755 whatever the checkout had, and a fixed gzip header.
 */
export async function deterministicTarGz(src: string, dest: string, opts: { prefix: string; epoch: number; staging: string }): Promise<ArchiveEntry[]> {
  const files = await listFiles(src);
  if (files.length === 0) {
    throw new StepError('NATIVE_MODELS_EMPTY', `the models folder ${src} has no files`, { hint: 'point native.models at the folder that holds the model files' });
  }
  const realSrc = await realpath(src);
  await rm(opts.staging, { recursive: true, force: true });
  const entries: ArchiveEntry[] = [];
  for (const rel of files) {
    const from = path.join(src, rel);
    const real = await realpath(from);
    if (path.relative(realSrc, real).startsWith('..')) {
      throw new StepError('UNSAFE_PATH', `the models folder entry ${rel} is a symlink to ${real}, outside ${src}`, {
        hint: 'models.tar.gz may only contain files from the models folder; copy the file in instead of linking it',
      });
    }
    const to = path.join(opts.staging, opts.prefix, rel);
    await mkdir(path.dirname(to), { recursive: true });
    await copyFile(real, to);
    const executable = ((await stat(real)).mode & 0o111) !== 0;
    await chmod(to, executable ? 0o755 : 0o644);
    const d = await hashFile(to);
    entries.push({ path: `${opts.prefix}/${rel}`, size: d.size, sha256: d.sha256 });
  }
  const tarStream = createTar(
    { cwd: opts.staging, portable: true, mtime: new Date(opts.epoch * 1000), gzip: false, noDirRecurse: true },
    entries.map((e) => e.path),
  );
  await pipeline(tarStream as unknown as NodeJS.ReadableStream, createGzip({ level: 9 }), fixGzipHeader(), createWriteStream(dest));
  return entries;
}

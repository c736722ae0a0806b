import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, hashFile } from '@mcp-release/manifest';
import type { Exec } from '@mcp-release/pipeline';

export interface SourceIdentity {
  /** Commit of the enclosing git repository, or null outside git. */
  commit: string | null;
  /** Whether tracked or untracked (not ignored) files differ from the commit. */
  dirty: boolean;
  /** sha256 over the source: the git tree id plus any uncommitted changes, or every file outside git. */
  fingerprint: string;
}

async function git(exec: Exec, cwd: string, args: string[]): Promise<string | undefined> {
  try {
    const r = await exec('git', args, { cwd });
    return r.exitCode === 0 ? r.stdout : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Identifies a source folder by content. Inside git: the tree object of the folder at HEAD, plus
 * the content of every changed or untracked file (ignored files such as build trees do not
 * count). Outside git: every file under the folder.
 */
export async function identifySource(exec: Exec, dir: string): Promise<SourceIdentity> {
  const real = await realpath(dir);
  const top = (await git(exec, real, ['rev-parse', '--show-toplevel']))?.trim();
  if (top) {
    const commit = (await git(exec, real, ['rev-parse', 'HEAD']))?.trim();
    const prefix = path.relative(await realpath(top), real).split(path.sep).join('/');
    const tree = commit ? (await git(exec, real, ['rev-parse', prefix ? `HEAD:${prefix}` : 'HEAD^{tree}']))?.trim() : undefined;
    const status = (await git(exec, real, ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--', '.'])) ?? '';
    const h = createHash('sha256').update(`tree ${tree ?? 'none'}\n`);
    const changed = status
      .split('\0')
      .filter((e) => e.length > 3)
      .map((e) => e.slice(3))
      .sort();
    for (const rel of changed) {
      const file = path.join(top, rel);
      const st = await stat(file).catch(() => undefined);
      const digest = st?.isFile() ? (await hashFile(file)).sha256 : st ? 'not-a-file' : 'deleted';
      h.update(`${rel}\0${digest}\n`);
    }
    return { commit: commit ?? null, dirty: changed.length > 0, fingerprint: h.digest('hex') };
  }
  const h = createHash('sha256').update('files\n');
  for (const rel of await listFiles(real)) h.update(`${rel}\0${(await hashFile(path.join(real, rel))).sha256}\n`);
  return { commit: null, dirty: false, fingerprint: h.digest('hex') };
}

/** Every regular file under `root`, relative, sorted; skips .git. */
export async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(path.join(root, rel), { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name === '.git') continue;
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, child)));
    else out.push(child);
  }
  return out;
}

export async function readJsonFile<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** A digest of several labelled parts, for step fingerprints. */
export function digestOf(parts: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}

/** `linux-x64`, `darwin-arm64`, … */
export function currentPlatform(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return `${os}-${process.arch}`;
}

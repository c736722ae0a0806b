import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 't@example.invalid', GIT_COMMITTER_DATE: '2026-02-03T04:05:06Z', GIT_AUTHOR_DATE: '2026-02-03T04:05:06Z' },
  }).trim();
}

/** A small git repository with one publishable package `pkg/` and a release policy. */
export async function makeRepo(dir: string, opts: { version?: string; prepack?: string; extraPolicy?: string } = {}): Promise<string> {
  await mkdir(path.join(dir, 'pkg'), { recursive: true });
  await mkdir(path.join(dir, 'policies'), { recursive: true });
  await writeFile(
    path.join(dir, 'pkg', 'package.json'),
    `${JSON.stringify({ name: 'demo-pkg', version: opts.version ?? '1.2.3', license: 'MIT', files: ['index.js'], ...(opts.prepack ? { scripts: { prepack: opts.prepack } } : {}) }, null, 2)}\n`,
  );
  await writeFile(path.join(dir, 'pkg', 'index.js'), 'export const answer = 42;\n');
  await writeFile(path.join(dir, 'policies', 'release-policy.yaml'), `version: 1\nrelease:\n  tag: "v{version}"\npackages:\n  - path: pkg\n${opts.extraPolicy ?? ''}`);
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'init');
  return git(dir, 'rev-parse', 'HEAD');
}

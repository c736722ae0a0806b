// Test support for the changesets tests: a small npm workspace in git with changesets set up.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exec, type Deps } from '@mcp-release/pipeline';
import { git } from '../../../../test/helpers/git-repo.js';
import { REPO_ROOT } from '../../../../test/helpers/tmp.js';
import { parsePolicy, type Policy } from '../policy.js';

export const IDENTITY = {
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 't@example.invalid',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 't@example.invalid',
};

/** Deps with real exec and a git identity; MCP_RELEASE_GIT_REMOTE only when given. */
export function testDeps(env: NodeJS.ProcessEnv = {}): Deps {
  const base: NodeJS.ProcessEnv = { ...process.env, ...IDENTITY };
  delete base.MCP_RELEASE_GIT_REMOTE;
  return { exec, env: { ...base, ...env }, now: () => new Date() };
}

export const CHANGESET_CONFIG = {
  $schema: 'https://unpkg.com/@changesets/config/schema.json',
  changelog: '@changesets/cli/changelog',
  commit: false,
  fixed: [],
  linked: [],
  access: 'restricted',
  baseBranch: 'main',
  updateInternalDependencies: 'patch',
  ignore: [],
};

export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

export async function writeText(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

/** A changeset file's text. */
export function changeset(releases: Record<string, string>, summary = 'A change'): string {
  return `---\n${Object.entries(releases)
    .map(([n, t]) => `"${n}": ${t}`)
    .join('\n')}\n---\n\n${summary}\n`;
}

export function policyFor(extra = ''): Policy {
  return parsePolicy(`version: 1\npackages:\n  - path: packages/a\n  - path: packages/b\n${extra}`, 'policy');
}

/**
 * An npm workspace with two releasable packages (pkg-a in packages/a, pkg-b in packages/b), one
 * that is not released (internal-tool in tools/internal), docs, changesets set up, and this
 * repository's node_modules linked in (as `npm ci` would leave it; ignored by git).
 */
export async function makeWorkspace(dir: string, opts: { linkModules?: boolean; config?: Record<string, unknown> } = {}): Promise<string> {
  await writeJson(path.join(dir, 'package.json'), { name: 'demo-root', private: true, workspaces: ['packages/*', 'tools/*'] });
  await writeJson(path.join(dir, 'packages/a/package.json'), { name: 'pkg-a', version: '1.0.0', license: 'MIT' });
  await writeText(path.join(dir, 'packages/a/index.js'), 'export const a = 1;\n');
  await writeJson(path.join(dir, 'packages/b/package.json'), { name: 'pkg-b', version: '2.0.0', license: 'MIT' });
  await writeText(path.join(dir, 'packages/b/index.js'), 'export const b = 2;\n');
  await writeJson(path.join(dir, 'tools/internal/package.json'), { name: 'internal-tool', version: '0.0.1', private: true });
  await writeText(path.join(dir, 'docs/guide.md'), '# Guide\n');
  await writeJson(path.join(dir, '.changeset/config.json'), { ...CHANGESET_CONFIG, ...opts.config });
  await writeText(path.join(dir, '.changeset/README.md'), '# Changesets\n');
  await writeText(path.join(dir, '.gitignore'), 'node_modules\n');
  if (opts.linkModules !== false) await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'init');
  return git(dir, 'rev-parse', 'HEAD');
}

/** Writes files and commits them. */
export async function commitFiles(dir: string, files: Record<string, string>, message = 'change'): Promise<string> {
  for (const [rel, text] of Object.entries(files)) await writeText(path.join(dir, rel), text);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', message);
  return git(dir, 'rev-parse', 'HEAD');
}

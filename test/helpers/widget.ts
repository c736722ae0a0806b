import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { releaseEnv, startReleaseLab, type Lab } from '@mcp-release/lab';
import { run } from './cli.js';
import { git } from './git-repo.js';
import { tempDir } from './tmp.js';

/** The release policy of the widget repository (`acme/widget`, one npm package, no native part). */
export function widgetPolicy(tag = 'v{version}'): string {
  return `version: 1
release:
  tag: "${tag}"
  repository: acme/widget
packages:
  - path: pkg
signer:
  repository: acme/widget
  workflow: release.yml
  ref: refs/heads/main
trustedPublishers:
  - package: acme-widget
    repository: acme/widget
    workflow: release.yml
    environment: release
`;
}

/**
 * A small repository to release through the whole order in seconds: one npm package
 * (`acme-widget`), a lockfile, the policy, one commit on main.
 */
export async function widgetRepo(options: { version?: string; tag?: string; prepack?: string } = {}): Promise<{ repo: string; commit: string }> {
  const repo = await tempDir();
  git(repo, 'init', '-q', '-b', 'main');
  await mkdir(path.join(repo, 'pkg'), { recursive: true });
  await mkdir(path.join(repo, 'policies'), { recursive: true });
  await writeFile(path.join(repo, '.gitignore'), 'out/\n');
  const scripts = options.prepack ? { scripts: { prepack: options.prepack } } : {};
  await writeFile(path.join(repo, 'pkg', 'package.json'), `${JSON.stringify({ name: 'acme-widget', version: options.version ?? '1.0.1', license: 'MIT', files: ['index.js'], ...scripts }, null, 2)}\n`);
  await writeFile(path.join(repo, 'pkg', 'index.js'), 'export const widget = 1;\n');
  await writeFile(path.join(repo, 'policies', 'release-policy.yaml'), widgetPolicy(options.tag));
  await writeFile(path.join(repo, 'package.json'), `${JSON.stringify({ name: 'widget-workspace', private: true, workspaces: ['pkg'] }, null, 2)}\n`);
  const lock = await run('npm', ['install', '--package-lock-only', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: repo });
  expect(lock.code, lock.stderr).toBe(0);
  git(repo, 'add', '-A');
  git(repo, 'commit', '-qm', 'widget');
  return { repo, commit: git(repo, 'rev-parse', 'HEAD') };
}

/** The lab as the widget's release workflow sees it; the caller stops it. */
export async function widgetLab(repo: string, commit: string, options: { immutable?: boolean } = {}): Promise<{ lab: Lab; env: NodeJS.ProcessEnv }> {
  const lab = await startReleaseLab({
    stateDir: await tempDir(),
    repoRoot: repo,
    commit,
    policy: {
      release: { repository: 'acme/widget' },
      signer: { repository: 'acme/widget', workflow: 'release.yml', ref: 'refs/heads/main' },
      trustedPublishers: [{ package: 'acme-widget', repository: 'acme/widget', workflow: 'release.yml', environment: 'release' }],
    },
    ...(options.immutable ? { immutableReleases: true } : {}),
  });
  const env: NodeJS.ProcessEnv = { ...process.env, ...releaseEnv(lab) };
  delete env.NPM_CONFIG_REGISTRY;
  return { lab, env };
}

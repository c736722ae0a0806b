/**
 * `mcp-release init`: writes the release, signing and CI workflows and a starter release policy
 * into a repository. Everything is rendered and validated first; existing files are never
 * replaced without `force`, and the files are written together (each staged beside its target,
 * then renamed), so a failure leaves the repository as it was.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { StepError } from '../errors.js';
import validateNpmName from '../npm-name.js';
import { DEFAULT_POLICY_PATH } from '../policy.js';
import { isToolkitRepository, renderTemplates, resolveRenderOptions, WORKFLOW_TEMPLATES, type RenderOptions } from './render.js';
import { RELEASE_ENVIRONMENT, RELEASE_WORKFLOW, repositoryRelative, signerIdentity, starterPolicy } from './starter-policy.js';

/** Where init writes the workflows. */
export const WORKFLOW_DIR = '.github/workflows';

export interface InitOptions extends RenderOptions {
  /** The repository's root folder. */
  repoRoot: string;
  /** Workspace folders (relative to the root) of the packages to release, in order; each holds a package.json. Not needed with workflowsOnly. */
  packages?: string[];
  /** The MCP server package's npm name (default: the first package). */
  mcpPackage?: string;
  /** The native meson source folder, relative to the root. */
  nativeSource?: string;
  /** The golden fixture folder, relative to the root (default fixtures/vmaf). */
  goldenFixtures?: string;
  /** Replace files that exist. */
  force?: boolean;
  /** Write only the workflows, never the policy (regenerating after a template or pin change). */
  workflowsOnly?: boolean;
}

export interface InitResult {
  /** Every file written, relative to the root, with `/`. */
  written: string[];
  /** Those of them that existed before and were replaced (only with force). */
  replaced: string[];
  /** What the maintainer still has to do, one sentence each. */
  nextSteps: string[];
}

interface Planned {
  rel: string;
  abs: string;
  text: string;
}

async function readPackage(repoRoot: string, folder: string): Promise<{ path: string; name: string }> {
  const rel = repositoryRelative(folder, 'the package folder');
  const file = path.join(repoRoot, rel, 'package.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new StepError('INIT_PACKAGE_MISSING', `there is no package.json in ${rel}`, {
      cause: err,
      hint: 'name the workspace folders of the packages to release (each with a package.json), relative to the repository root',
    });
  }
  let pkg: { name?: unknown; private?: unknown };
  try {
    pkg = JSON.parse(text) as typeof pkg;
  } catch (err) {
    throw new StepError('INIT_PACKAGE_INVALID', `${rel}/package.json is not valid JSON: ${(err as Error).message}`, { cause: err, hint: `fix ${rel}/package.json` });
  }
  if (typeof pkg.name !== 'string' || !validateNpmName(pkg.name)) {
    throw new StepError('INIT_PACKAGE_INVALID', `${rel}/package.json has no valid npm package name (${JSON.stringify(pkg.name)})`, { hint: `set "name" in ${rel}/package.json to the name the package is published under` });
  }
  if (pkg.private === true) {
    throw new StepError('INIT_PACKAGE_PRIVATE', `${pkg.name} (${rel}) is private, so it cannot be published`, { hint: `remove "private": true from ${rel}/package.json, or leave the folder out of the packages to release` });
  }
  return { path: rel, name: pkg.name };
}

async function existing(abs: string): Promise<'file' | 'other' | undefined> {
  const st = await lstat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (!st) return undefined;
  return st.isFile() || st.isSymbolicLink() ? 'file' : 'other';
}

/** Writes every file or none: each is staged beside its target, then all are renamed into place. */
async function writeAll(files: Planned[]): Promise<void> {
  const staged: Array<{ tmp: string; abs: string }> = [];
  try {
    for (const f of files) {
      await mkdir(path.dirname(f.abs), { recursive: true });
      const tmp = path.join(path.dirname(f.abs), `.${path.basename(f.abs)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      const handle = await open(tmp, 'wx', 0o644);
      staged.push({ tmp, abs: f.abs });
      try {
        await handle.writeFile(f.text);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  } catch (err) {
    for (const s of staged) await rm(s.tmp, { force: true });
    throw new StepError('INIT_WRITE_FAILED', `cannot write ${files.map((f) => f.rel).join(', ')}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
      hint: 'check that the repository folders are writable; nothing was changed',
    });
  }
  const done: string[] = [];
  try {
    for (const [i, s] of staged.entries()) {
      await rename(s.tmp, s.abs);
      done.push(files[i]?.rel ?? s.abs);
    }
  } catch (err) {
    for (const s of staged) await rm(s.tmp, { force: true });
    throw new StepError('INIT_WRITE_FAILED', `cannot move the new files into place (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); written: ${done.join(', ') || 'none'}`, {
      cause: err,
      hint: 'check the repository folders, then run init again with --force to write every file',
    });
  }
}

/** Writes .github/workflows/{release,sign,ci}.yml and policies/release-policy.yaml into a repository. */
export async function initRepository(options: InitOptions): Promise<InitResult> {
  const repoRoot = path.resolve(options.repoRoot);
  if (!(await stat(repoRoot).catch(() => undefined))?.isDirectory()) {
    throw new StepError('INIT_REPO_MISSING', `${repoRoot} is not a folder`, { hint: 'run init in the repository root, or pass the repository folder' });
  }
  const resolved = resolveRenderOptions(options);
  const workflows = await renderTemplates(options);
  const files: Planned[] = WORKFLOW_TEMPLATES.map((name) => ({ rel: `${WORKFLOW_DIR}/${name}`, abs: path.join(repoRoot, WORKFLOW_DIR, name), text: workflows[name] }));

  let packageNames: string[] = [];
  if (!options.workflowsOnly) {
    if (!options.packages?.length) {
      throw new StepError('INIT_PACKAGES_MISSING', 'no package to release was given', { hint: 'name the workspace folders of the packages to release, e.g. --package packages/server (repeatable)' });
    }
    const packages: Array<{ path: string; name: string }> = [];
    for (const p of options.packages) packages.push(await readPackage(repoRoot, p));
    const dup = packages.find((p, i) => packages.findIndex((o) => o.name === p.name || o.path === p.path) !== i);
    if (dup) throw new StepError('INIT_PACKAGES_DUPLICATE', `${dup.name} (${dup.path}) is listed twice`, { hint: 'name each package folder once' });
    packageNames = packages.map((p) => p.name);
    const { text } = starterPolicy({
      owner: resolved.owner,
      repo: resolved.repo,
      defaultBranch: resolved.defaultBranch,
      packages,
      ...(options.mcpPackage !== undefined ? { mcpPackage: options.mcpPackage } : {}),
      ...(options.nativeSource !== undefined ? { nativeSource: options.nativeSource } : {}),
      ...(options.goldenFixtures !== undefined ? { goldenFixtures: options.goldenFixtures } : {}),
    });
    files.push({ rel: DEFAULT_POLICY_PATH, abs: path.join(repoRoot, DEFAULT_POLICY_PATH), text });
  }

  const present: string[] = [];
  for (const f of files) {
    const kind = await existing(f.abs);
    if (kind === 'other') throw new StepError('INIT_TARGET_NOT_FILE', `${f.rel} exists and is not a file`, { hint: `move ${f.rel} out of the way; init writes a file there` });
    if (kind) present.push(f.rel);
  }
  if (present.length && !options.force) {
    throw new StepError('INIT_FILES_EXIST', `${present.length} file(s) that init writes already exist: ${present.join(', ')}; nothing was written`, {
      details: present,
      hint: 'commit or save them, then run init again with --force to replace them (or remove them first)',
    });
  }
  await writeAll(files);

  const repository = `${resolved.owner}/${resolved.repo}`;
  const nextSteps = [
    `Create the environment "${RELEASE_ENVIRONMENT}" (Settings → Environments) with required reviewers and a deployment branch rule for ${resolved.defaultBranch}.`,
    ...packageNames.map((n) => `Bind the trusted publisher of ${n} on the npm registry: repository ${repository}, workflow ${RELEASE_WORKFLOW}, environment ${RELEASE_ENVIRONMENT}.`),
    `Consumers verify signatures from ${signerIdentity(resolved.owner, resolved.repo, resolved.defaultBranch)} (issuer https://token.actions.githubusercontent.com).`,
  ];
  if (!isToolkitRepository(resolved.owner, resolved.repo)) {
    nextSteps.unshift('Add mcp-release as a devDependency (npm install --save-dev mcp-release) and commit the lockfile: the workflows run it with npx --no-install.');
  }
  if (!options.workflowsOnly) nextSteps.push('Add the golden table (policies/golden-scores.json) and its fixture folder named in the policy, then commit everything.');
  return { written: files.map((f) => f.rel), replaced: present, nextSteps };
}

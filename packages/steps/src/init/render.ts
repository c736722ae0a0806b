/**
 * The workflow templates (workflows/*.yml at the root of mcp-release) and how `mcp-release init`
 * fills them in.
 *
 * Placeholder syntax, chosen so that it can never be mistaken for a GitHub expression `${{ … }}`:
 *   {{name}}            a value, e.g. {{owner}}; no spaces inside the braces, never after a `$`
 *   {{pin:owner/name}}  a third-party action pinned by commit, with its tag as a comment (pins.ts)
 *   {{action:step}}     one of mcp-release's own actions (`./actions/step` in mcp-release itself)
 *   {{#name}} … {{/name}}  on lines of their own: the lines between are kept only when the value
 *                       `name` is set (e.g. the check-dist step of ci.yml)
 * An unknown name, an unbalanced section or any `{{` left after rendering is an error: a template
 * never renders half-filled.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { parseDocument } from 'yaml';
import { StepError } from '../errors.js';
import { ACTION_PINS, DEFAULT_NODE_VERSION, TOOLKIT_ACTIONS, TOOLKIT_REPOSITORY } from './pins.js';

/** The templates, by file name; init writes each to .github/workflows/<name>. */
export const WORKFLOW_TEMPLATES = ['release.yml', 'sign.yml', 'ci.yml'] as const;
export type WorkflowTemplate = (typeof WORKFLOW_TEMPLATES)[number];
export type RenderedWorkflows = Record<WorkflowTemplate, string>;

/**
 * Where the workflows get mcp-release's actions: `local` uses `./actions/<step>` of the same
 * commit (mcp-release's own repository); otherwise the actions of TOOLKIT_REPOSITORY pinned to
 * the commit of a release (its tag `v<version>`).
 */
export type ToolkitRef = 'local' | { sha: string; version: string };

export interface RenderOptions {
  /** The GitHub owner (user or organization) of the repository the workflows are for. */
  owner: string;
  /** The repository's name. */
  repo: string;
  /** The default branch: releases come from it, CI runs on pushes to it. Default main. */
  defaultBranch?: string;
  /** The Node.js version the jobs set up. Default DEFAULT_NODE_VERSION. */
  nodeVersion?: string;
  /** Node.js versions the CI tests run on. Default: nodeVersion (mcp-release itself: 20 and 24). */
  ciNodeVersions?: string[];
  /** Default: `local` for mcp-release's own repository; required for every other repository. */
  toolkit?: ToolkitRef;
  /** A command that fails when committed build output is stale; CI runs it as a step when set (mcp-release itself: node scripts/build.mjs --check). */
  checkDist?: string;
  /** The folder holding the templates. Default: found next to this module (findTemplatesDir). */
  templatesDir?: string;
}

/** The options after defaults, checked. */
export interface ResolvedRenderOptions {
  owner: string;
  repo: string;
  /** This is mcp-release's own repository. */
  self: boolean;
  defaultBranch: string;
  nodeVersion: string;
  ciNodeVersions: string[];
  toolkit: ToolkitRef;
  checkDist: string | undefined;
}

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;
const BRANCH = /^(?!.*\.\.)(?!.*\/\/)(?!.*\.lock$)[A-Za-z0-9][A-Za-z0-9._/-]{0,199}(?<![/.])$/;
const NODE_VERSION = /^\d{1,3}(?:\.\d{1,3}){0,2}$/;
const SHA = /^[0-9a-f]{40}$/;
/** A command written into a run: line as a plain YAML scalar: no quotes, no `#`, no `: `, no expressions. */
const COMMAND = /^[A-Za-z0-9.][A-Za-z0-9 ._/=@+,-]{0,199}$/;

function invalid(what: string, value: unknown, hint: string): never {
  throw new StepError('INIT_OPTIONS_INVALID', `${what} ${JSON.stringify(value)} is not valid`, { hint });
}

/** Whether owner/repo is mcp-release's own repository (GitHub names are case-insensitive). */
export function isToolkitRepository(owner: string, repo: string): boolean {
  return `${owner}/${repo}`.toLowerCase() === TOOLKIT_REPOSITORY.toLowerCase();
}

/** Applies the defaults and checks every option, so that no value can break the YAML it is written into. */
export function resolveRenderOptions(options: RenderOptions): ResolvedRenderOptions {
  const { owner, repo } = options;
  if (typeof owner !== 'string' || !OWNER.test(owner)) invalid('the owner', owner, 'pass the GitHub user or organization that owns the repository, e.g. --owner my-org');
  if (typeof repo !== 'string' || !REPO.test(repo) || repo === '.' || repo === '..') invalid('the repository name', repo, 'pass the repository name without the owner, e.g. --repo-name my-mcp-server');
  const self = isToolkitRepository(owner, repo);
  const defaultBranch = options.defaultBranch ?? 'main';
  if (!BRANCH.test(defaultBranch)) invalid('the default branch', defaultBranch, 'pass the branch releases come from, e.g. main');
  const nodeVersion = options.nodeVersion ?? DEFAULT_NODE_VERSION;
  if (!NODE_VERSION.test(nodeVersion)) invalid('the Node.js version', nodeVersion, 'pass a Node.js version such as 24 or 24.4');
  const ciNodeVersions = options.ciNodeVersions ?? (self ? ['20', '24'] : [nodeVersion]);
  if (!Array.isArray(ciNodeVersions) || ciNodeVersions.length === 0) invalid('the CI Node.js versions', ciNodeVersions, 'pass at least one Node.js version, e.g. ["24"]');
  for (const v of ciNodeVersions) if (typeof v !== 'string' || !NODE_VERSION.test(v)) invalid('the CI Node.js version', v, 'pass Node.js versions such as 20 or 24');
  if (new Set(ciNodeVersions).size !== ciNodeVersions.length) invalid('the CI Node.js versions', ciNodeVersions, 'name each Node.js version once');

  const toolkit = options.toolkit ?? (self ? 'local' : undefined);
  if (toolkit === undefined) {
    throw new StepError('INIT_TOOLKIT_REF_MISSING', `the workflows of ${owner}/${repo} must pin mcp-release's actions to a release commit, and none was given`, {
      hint: `pass the commit of the mcp-release release tag and its version (git ls-remote https://github.com/${TOOLKIT_REPOSITORY} 'refs/tags/v<version>^{}' prints the commit)`,
    });
  }
  if (toolkit !== 'local') {
    if (typeof toolkit !== 'object' || toolkit === null) invalid('the toolkit reference', toolkit, 'pass "local" or { sha, version }');
    if (typeof toolkit.sha !== 'string' || !SHA.test(toolkit.sha)) {
      invalid('the mcp-release commit', toolkit.sha, 'pass the full 40-hex commit SHA of the release tag (lower case), never a tag or branch: tags can be moved');
    }
    const version = typeof toolkit.version === 'string' ? semver.valid(toolkit.version.replace(/^v/, '')) : null;
    if (!version) invalid('the mcp-release version', toolkit.version, 'pass the version of that release, e.g. 0.1.0');
  }
  const checkDist = options.checkDist ?? (self ? 'node scripts/build.mjs --check' : undefined);
  if (checkDist !== undefined && (typeof checkDist !== 'string' || !COMMAND.test(checkDist))) {
    invalid('the check-dist command', checkDist, 'pass one plain command line (letters, digits, spaces and . _ / = @ + , -), e.g. npm run check-dist');
  }
  return { owner, repo, self, defaultBranch, nodeVersion, ciNodeVersions: [...ciNodeVersions], toolkit, checkDist };
}

/** The values the placeholders take for these options (undefined: a section that is left out). */
export function templateValues(o: ResolvedRenderOptions): Record<string, string | undefined> {
  const values: Record<string, string | undefined> = {
    owner: o.owner,
    repo: o.repo,
    default_branch: o.defaultBranch,
    node_version: o.nodeVersion,
    ci_node_versions: `[${o.ciNodeVersions.map((v) => JSON.stringify(v)).join(', ')}]`,
    // mcp-release itself runs its CLI from source (bundled first); every other repository has it
    // as a devDependency, installed by npm ci from the lockfile (so its integrity is pinned).
    mcp_release: o.self ? 'node packages/cli/dist/mcp-release.mjs' : 'npx --no-install mcp-release',
    prepare_cli: o.self ? 'node scripts/build.mjs --cli' : 'npx --no-install mcp-release --version',
    check_dist: o.checkDist,
  };
  for (const [name, pin] of Object.entries(ACTION_PINS)) values[`pin:${name}`] = `${name}@${pin.sha} # ${pin.version}`;
  const toolkit = o.toolkit;
  for (const step of TOOLKIT_ACTIONS) {
    values[`action:${step}`] =
      toolkit === 'local' ? `./actions/${step}` : `${TOOLKIT_REPOSITORY}/actions/${step}@${toolkit.sha} # v${semver.valid(toolkit.version.replace(/^v/, '')) ?? toolkit.version}`;
  }
  return values;
}

const PLACEHOLDER = /(?<!\$)\{\{([^{}\n]*)\}\}/g;
const NAME = /^[a-z][a-z0-9_]*(?::[A-Za-z0-9_./-]+)?$/;
const SECTION_LINE = /^[ \t]*\{\{([#/])([a-z][a-z0-9_]*)\}\}[ \t]*$/;

function templateError(template: string, line: number, message: string): StepError {
  return new StepError('INIT_TEMPLATE_INVALID', `the template ${template}, line ${line}: ${message}`, {
    hint: 'fix the template in the workflows/ folder of mcp-release (its README lists the placeholders); a template never renders half-filled',
  });
}

/**
 * Fills one template. `values` holds every name the template may use; a name whose value is
 * undefined is a section that is left out (and may not be used as a value).
 */
export function renderTemplate(text: string, values: Readonly<Record<string, string | undefined>>, template: string): string {
  const out: string[] = [];
  const open: Array<{ name: string; line: number; keep: boolean }> = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const n = i + 1;
    const section = SECTION_LINE.exec(line);
    if (section) {
      const [, mark, name = ''] = section;
      if (mark === '#') {
        if (!Object.hasOwn(values, name)) throw templateError(template, n, `the section {{#${name}}} names no known value`);
        open.push({ name, line: n, keep: values[name] !== undefined && values[name] !== '' });
        return;
      }
      const top = open.pop();
      if (!top || top.name !== name) throw templateError(template, n, `{{/${name}}} closes ${top ? `{{#${top.name}}} (line ${top.line})` : 'no open section'}`);
      return;
    }
    if (open.some((s) => !s.keep)) return;
    const filled = line.replace(PLACEHOLDER, (whole, name: string) => {
      if (!NAME.test(name)) throw templateError(template, n, `${whole} is not a placeholder (names are lower case, without spaces: {{owner}}, {{pin:actions/checkout}})`);
      if (!Object.hasOwn(values, name)) throw templateError(template, n, `${whole} names no known value`);
      const value = values[name];
      if (value === undefined) throw templateError(template, n, `${whole} has no value here (it is a section name: use it as {{#${name}}} … {{/${name}}})`);
      return value;
    });
    // Anything like a placeholder that survived (a stray `{{`, or one split over lines) is an error.
    const left = /(?<!\$)\{\{/.exec(filled);
    if (left) throw templateError(template, n, `an unfilled "{{" is left at column ${left.index + 1}`);
    out.push(filled);
  });
  const unclosed = open.pop();
  if (unclosed) throw templateError(template, unclosed.line, `{{#${unclosed.name}}} is never closed`);
  return out.join('\n');
}

/**
 * Where the templates are, relative to this module: the repository's workflows/ folder when it
 * runs from source (packages/steps/src/init) or from a bundle inside the repository
 * (packages/cli/dist), and workflows/ beside the bundle, or one folder up, in a published package.
 */
const TEMPLATE_DIR_CANDIDATES = ['./workflows/', '../workflows/', '../../workflows/', '../../../workflows/', '../../../../workflows/'];

async function holdsTemplates(dir: string): Promise<boolean> {
  for (const name of WORKFLOW_TEMPLATES) {
    if (!(await stat(path.join(dir, name)).catch(() => undefined))?.isFile()) return false;
  }
  return true;
}

/** The first folder, nearest first, that holds every template. `from` is a module URL (default: this module's). */
export async function findTemplatesDir(from: string = import.meta.url): Promise<string> {
  const tried: string[] = [];
  for (const rel of TEMPLATE_DIR_CANDIDATES) {
    const dir = fileURLToPath(new URL(rel, from));
    if (tried.includes(dir)) continue;
    tried.push(dir);
    if (await holdsTemplates(dir)) return dir;
  }
  throw new StepError('INIT_TEMPLATES_MISSING', `the workflow templates (${WORKFLOW_TEMPLATES.join(', ')}) are not installed with mcp-release`, {
    details: tried.map((d) => `looked in ${d}`),
    hint: 'reinstall mcp-release (its package ships the templates in dist/workflows/); from a checkout of mcp-release, run it from the repository so that workflows/ is found',
  });
}

/** Renders every template for a repository. Each result is checked to be one YAML document. */
export async function renderTemplates(options: RenderOptions): Promise<RenderedWorkflows> {
  const resolved = resolveRenderOptions(options);
  const values = templateValues(resolved);
  const dir = options.templatesDir ?? (await findTemplatesDir());
  const out = {} as RenderedWorkflows;
  for (const name of WORKFLOW_TEMPLATES) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new StepError('INIT_TEMPLATES_MISSING', `cannot read the template ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        cause: err,
        hint: 'reinstall mcp-release, or pass the folder that holds release.yml, sign.yml and ci.yml',
      });
    }
    const rendered = renderTemplate(text, values, name);
    const doc = parseDocument(rendered, { uniqueKeys: true });
    if (doc.errors.length) {
      const e = doc.errors[0];
      throw new StepError('INIT_TEMPLATE_INVALID', `the template ${name} renders to YAML that does not parse${e?.linePos ? ` (line ${e.linePos[0].line})` : ''}: ${e?.message.split('\n')[0] ?? ''}`, {
        hint: 'fix the template in the workflows/ folder of mcp-release',
      });
    }
    out[name] = rendered;
  }
  return out;
}

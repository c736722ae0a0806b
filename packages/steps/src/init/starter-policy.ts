/**
 * The release policy `mcp-release init` writes for a repository: its packages, the tag scheme,
 * the signer identity of the reusable signing workflow, the npm trusted-publisher bindings of the
 * release workflow and its environment, and the golden-score gate. It is checked against the
 * policy schema before it is written.
 */
import path from 'node:path';
import { StepError } from '../errors.js';
import { parsePolicy, type Policy } from '../policy.js';
import { GITHUB_ACTIONS_ISSUER } from '../verify-step.js';
import { resolveRenderOptions } from './render.js';

/** The workflow that signs (a reusable workflow, for SLSA Build L3) and the one that publishes. */
export const SIGNING_WORKFLOW = 'sign.yml';
export const RELEASE_WORKFLOW = 'release.yml';
/** The GitHub environment the publishing jobs run in; the npm trusted-publisher binding names it. */
export const RELEASE_ENVIRONMENT = 'release';

export interface StarterPolicyOptions {
  owner: string;
  repo: string;
  defaultBranch?: string;
  /** Workspace packages in release order (the tag follows the first): folder and npm name. */
  packages: Array<{ path: string; name: string }>;
  /** The MCP server package (default: the first package). */
  mcpPackage?: string;
  /** The meson source tree of the native artifacts, relative to the repository (vmaf: the checkout holding libvmaf/). */
  nativeSource?: string;
  /** The golden-score fixture folder, relative to the repository. Default fixtures/vmaf. */
  goldenFixtures?: string;
}

/** The certificate identity (SAN) of a signature made by the signing workflow on the default branch. */
export function signerIdentity(owner: string, repo: string, defaultBranch = 'main'): string {
  return `https://github.com/${owner}/${repo}/.github/workflows/${SIGNING_WORKFLOW}@refs/heads/${defaultBranch}`;
}

/** A relative folder inside the repository, written with `/`: `.` for the root. */
export function repositoryRelative(value: string, what: string): string {
  const fail = (why: string): never => {
    throw new StepError('INIT_OPTIONS_INVALID', `${what} ${JSON.stringify(value)} ${why}`, { hint: `name ${what} relative to the repository root, with /, e.g. packages/server` });
  };
  if (typeof value !== 'string' || !value.trim()) fail('is empty');
  if (/[\0\r\n\\]/.test(value)) fail('holds a NUL, a line break or a backslash');
  if (path.posix.isAbsolute(value) || path.win32.isAbsolute(value)) fail('is absolute');
  const normal = path.posix.normalize(value).replace(/\/+$/, '') || '.';
  if (normal === '..' || normal.startsWith('../')) fail('leaves the repository');
  return normal;
}

const q = (s: string): string => JSON.stringify(s);
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The policy text, validated with the policy schema. */
export function starterPolicy(options: StarterPolicyOptions): { text: string; policy: Policy } {
  const { owner, repo, defaultBranch } = resolveRenderOptions({ owner: options.owner, repo: options.repo, toolkit: 'local', ...(options.defaultBranch ? { defaultBranch: options.defaultBranch } : {}) });
  const repository = `${owner}/${repo}`;
  if (!options.packages.length) {
    throw new StepError('INIT_PACKAGES_MISSING', 'no package to release was given', { hint: 'name at least one workspace folder with a package.json, e.g. --package packages/server' });
  }
  const names = options.packages.map((p) => p.name);
  const mcp = options.mcpPackage ?? names[0];
  if (mcp === undefined || !names.includes(mcp)) {
    throw new StepError('INIT_MCP_PACKAGE_UNKNOWN', `the MCP server package ${JSON.stringify(mcp)} is not among the packages released (${names.join(', ')})`, {
      hint: 'name one of the released packages as the MCP server, or add its folder to the packages',
    });
  }
  const fixtures = repositoryRelative(options.goldenFixtures ?? 'fixtures/vmaf', 'the golden fixture folder');
  const lines = [
    `# The release policy of ${repository}, written by \`mcp-release init\`.`,
    '# Every release step reads it; its schema is policies/schemas/release-policy.schema.json in mcp-release.',
    'version: 1',
    '',
    'release:',
    "  # The GitHub release tag; {version} is the first package's version.",
    `  tag: ${q('v{version}')}`,
    '  # Only a commit on this branch can be released.',
    `  branch: ${q(defaultBranch)}`,
    `  repository: ${q(repository)}`,
    '',
    '# The npm packages released, in this order. The release tag follows the first one.',
    'packages:',
    ...options.packages.map((p) => `  - path: ${q(repositoryRelative(p.path, 'the package folder'))}`),
    '',
    '# The MCP server: its packed tarball is installed, started over stdio and made to score',
    '# (smoke-mcp) before anything is published.',
    'mcp:',
    `  package: ${q(mcp)}`,
    '',
  ];
  if (options.nativeSource !== undefined) {
    lines.push(
      '# The native artifacts: a meson project (a vmaf checkout: the folder holding libvmaf/).',
      'native:',
      `  source: ${q(repositoryRelative(options.nativeSource, 'the native source folder'))}`,
      '  # Passed to `meson setup` as -D<name>=<value>; without enable_float the vmaf_float_* models cannot run.',
      '  options:',
      `    enable_float: ${q('true')}`,
      '  # The models folder, relative to the source tree, archived as models.tar.gz.',
      `  models: ${q('model')}`,
      '',
    );
  }
  lines.push(
    "# The golden-score gate: Netflix's golden VMAF/PSNR scores, reproduced by the native CLI this",
    '# release built and by the packed MCP server, before anything is signed or published. Add the',
    '# golden table and the fixture folder it was made from at these paths.',
    'gates:',
    '  golden:',
    `    table: ${q('policies/golden-scores.json')}`,
    `    fixtures: ${q(fixtures)}`,
    '    scorers:',
    '      - kind: vmaf-cli',
    '      - kind: mcp',
    '    backends:',
    '      required: [cpu]',
    '',
    '# Who signs releases. .github/workflows/sign.yml, a reusable workflow that release.yml calls,',
    '# signs apart from every build step (SLSA Build L3), so the certificate names sign.yml:',
    `#   ${signerIdentity(owner, repo, defaultBranch)}`,
    '# Consumers (verify.sh, mcp-release verify) accept signatures from exactly this identity.',
    'signer:',
    `  repository: ${q(repository)}`,
    `  workflow: ${q(SIGNING_WORKFLOW)}`,
    '  # A regular expression matched against the whole ref.',
    `  ref: ${q(`refs/heads/${escapeRegExp(defaultBranch)}`)}`,
    `  issuer: ${q(GITHUB_ACTIONS_ISSUER)}`,
    '',
    '# npm trusted publishing: the only workflow and environment allowed to publish each package,',
    '# through OIDC and never a token. Set the same binding on the registry (package settings,',
    '# "Trusted publisher"): this repository, the workflow release.yml, the environment release.',
    'trustedPublishers:',
    ...options.packages.flatMap((p) => [
      `  - package: ${q(p.name)}`,
      `    repository: ${q(repository)}`,
      `    workflow: ${q(RELEASE_WORKFLOW)}`,
      `    environment: ${q(RELEASE_ENVIRONMENT)}`,
    ]),
  );
  const text = `${lines.join('\n')}\n`;
  return { text, policy: parsePolicy(text, 'the starter release policy') };
}

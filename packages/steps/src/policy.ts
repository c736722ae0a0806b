import { readFile } from 'node:fs/promises';
import Ajv from 'ajv';
import semver from 'semver';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { describeSchemaErrors } from '@mcp-release/manifest';
import schema from '../../../policies/schemas/release-policy.schema.json' with { type: 'json' };
import { StepError } from './errors.js';

export interface NativePolicy {
  source: string;
  options?: Record<string, string | boolean | number>;
  library?: string;
  cli?: string;
  models?: string;
  tests?: boolean;
}

export interface Policy {
  version: 1;
  release?: { tag?: string; branch?: string; repository?: string; remote?: string };
  packages: Array<{ path: string; tag?: string }>;
  native?: NativePolicy;
  /** The MCP server package whose packed tarball is smoke-tested before anything is published. */
  mcp?: { package: string };
  /** npm trusted-publisher bindings (which workflow may publish which package). */
  trustedPublishers?: Array<{ package: string; repository: string; workflow: string; environment?: string }>;
  /** The signing identity consumers accept. */
  signer?: { repository: string; workflow: string; ref: string; issuer?: string };
  /** How the release is published (npm and the GitHub release). */
  publish?: {
    npm?: { access?: 'public' | 'restricted'; provenance?: boolean; prereleaseTag?: string; waitSeconds?: number };
    github?: { releaseName?: string; prerelease?: 'auto' | boolean };
  };
  /** check-changesets: which changes need no changeset. */
  changesets?: { exempt?: string[]; ignore?: string[]; baseBranch?: string };
  /** Release gates (see gate/gate.ts for the golden gate's settings). */
  gates?: { golden?: Record<string, unknown> };
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<Policy>(schema);

export const DEFAULT_POLICY_PATH = 'policies/release-policy.yaml';

export function parsePolicy(text: string, source: string): Policy {
  let value: unknown;
  try {
    value = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    throw new StepError('POLICY_INVALID', `${source} is not valid YAML${where}`, {
      cause: err,
      details: [(err as Error).message.split('\n')[0] ?? ''],
      hint: `fix the YAML syntax in ${source}`,
    });
  }
  if (!validate(value)) {
    const details = describeSchemaErrors(validate.errors);
    throw new StepError('POLICY_INVALID', `${source} does not match the policy schema: ${details[0] ?? 'invalid'}`, {
      details,
      hint: `edit ${source}; its schema is policies/schemas/release-policy.schema.json`,
    });
  }
  return value;
}

export async function loadPolicy(file: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new StepError('POLICY_MISSING', `cannot read the release policy ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
      hint: 'run from the repository root, or pass --policy FILE (the default is policies/release-policy.yaml)',
    });
  }
  return parsePolicy(text, file);
}

/**
 * The values a tag scheme may use, all derived from the frozen plan: {version}, {major}, {minor},
 * {patch}, {date} (the plan's UTC date as YYYY.M.D) and, added by the plan, {n}.
 */
export function tagVariables(version: string, epoch: number): Record<string, string> {
  const v = semver.parse(version);
  const d = new Date(epoch * 1000);
  return {
    version,
    major: String(v?.major ?? ''),
    minor: String(v?.minor ?? ''),
    patch: String(v?.patch ?? ''),
    date: `${d.getUTCFullYear()}.${d.getUTCMonth() + 1}.${d.getUTCDate()}`,
  };
}

/** Applies a tag scheme such as `v{version}` or `v{version}-lusoris.{n}`; a bare version string fills {version} only. */
export function applyTagScheme(scheme: string, vars: string | Record<string, string>): string {
  const values = typeof vars === 'string' ? { version: vars } : vars;
  return scheme.replace(/\{([a-z]+)\}/g, (whole, key: string) => values[key] ?? whole);
}

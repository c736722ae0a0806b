/**
 * What the init tests share: the options of an adopting repository and of mcp-release itself,
 * the rendered workflows read as YAML, and GitHub's own workflow parser (@actions/workflow-parser),
 * which does not load as ESM and is therefore bundled as CommonJS with esbuild into a temporary
 * folder, as in lint-workflows/workflow-parser.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../../../test/helpers/tmp.js';
import type { RenderOptions } from './render.js';

/** A repository adopting mcp-release, pinned to a release of the toolkit. */
export const ADOPTER: RenderOptions = {
  owner: 'acme-media',
  repo: 'vmaf-server',
  toolkit: { sha: '4f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4', version: '0.1.0' },
};

/** mcp-release itself (its policy's signer repository). */
export const SELF: RenderOptions = { owner: 'mcp-release', repo: 'vmaf-mcp' };

export interface ParserError {
  message: string;
  range?: { start: { line: number; column: number } };
}

interface WorkflowParser {
  parseWorkflow(file: { name: string; content: string }, trace: unknown): { context: { errors: { getErrors(): ParserError[] } } };
  NoOperationTraceWriter: new () => unknown;
}

/** Bundles and loads GitHub's workflow parser; `errors` lists what it reports for one file. */
export async function loadWorkflowParser(): Promise<{ errors(name: string, content: string): ParserError[]; dispose(): Promise<void> }> {
  const folder = await mkdtemp(path.join(tmpdir(), 'mcp-release-init-wp-'));
  const outfile = path.join(folder, 'workflow-parser.cjs');
  await build({
    stdin: { contents: `export * from '@actions/workflow-parser';`, resolveDir: REPO_ROOT, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile,
    logLevel: 'silent',
  });
  const parser = createRequire(import.meta.url)(outfile) as WorkflowParser;
  return {
    errors: (name, content) => parser.parseWorkflow({ name, content }, new parser.NoOperationTraceWriter()).context.errors.getErrors(),
    dispose: () => rm(folder, { recursive: true, force: true }),
  };
}

export interface WorkflowDoc {
  on: Record<string, unknown> | string | null;
  permissions?: unknown;
  concurrency?: unknown;
  jobs: Record<string, JobDoc>;
}

export interface JobDoc {
  uses?: string;
  permissions?: Record<string, string>;
  environment?: string;
  if?: string;
  needs?: string | string[];
  'runs-on'?: string;
  strategy?: { matrix?: { include?: Array<Record<string, string>> } };
  steps?: Array<{ uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>; name?: string; id?: string }>;
}

export function workflowDoc(text: string): WorkflowDoc {
  return parse(text, { uniqueKeys: true }) as WorkflowDoc;
}

/** Every run: script of a workflow, with where it is. */
export function runScripts(doc: WorkflowDoc): Array<{ where: string; run: string }> {
  return Object.entries(doc.jobs).flatMap(([id, job]) => (job.steps ?? []).flatMap((s, i) => (s.run === undefined ? [] : [{ where: `jobs.${id}.steps[${i}]`, run: s.run }])));
}

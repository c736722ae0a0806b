/**
 * What the init tests share: the options of an adopting repository and of mcp-release itself,
 * the rendered workflows read as YAML, and GitHub's own workflow parser (test/helpers/workflow-parser.ts).
 */
import { parse } from 'yaml';
import type { RenderOptions } from './render.js';

/** A repository adopting mcp-release, pinned to a release of the toolkit. */
export const ADOPTER: RenderOptions = {
  owner: 'acme-media',
  repo: 'vmaf-server',
  toolkit: { sha: '4f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4', version: '0.1.0' },
};

/** mcp-release itself (its policy's signer repository). */
export const SELF: RenderOptions = { owner: 'mcp-release', repo: 'vmaf-mcp' };

export { loadWorkflowParser, type ParserError } from '../../../../test/helpers/workflow-parser.js';

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

import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from './tmp.js';

/**
 * GitHub's workflow parser (@actions/workflow-parser, the parser of its language service). It
 * does not load as plain ESM, so it is bundled as CommonJS into a temporary folder and required.
 */
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
  const folder = await mkdtemp(path.join(tmpdir(), 'mcp-release-wp-'));
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

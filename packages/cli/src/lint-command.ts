import path from 'node:path';
import { lintWorkflowFiles, renderJson, renderSarif, renderText } from '@mcp-release/steps';
import { CliError } from './errors.js';
import type { CliIo } from './main.js';

type Values = Record<string, unknown> & { _positionals?: string[] };

/** `mcp-release lint-workflows [paths…]`: exit 1 when any error-level finding is reported. */
export async function lintCommand(values: Values, paths: string[], repoRoot: string, io: CliIo): Promise<number> {
  const format = (values.format as string | undefined) ?? (values.json ? 'json' : 'text');
  if (!['text', 'json', 'sarif'].includes(format)) throw new CliError('USAGE', `--format ${JSON.stringify(format)} is not text, json or sarif`, { hint: 'e.g. --format sarif > lint.sarif' });
  const release = values['release-workflow'] as string[] | undefined;
  const owners = values['trusted-owner'] as string[] | undefined;
  const report = await lintWorkflowFiles(
    paths.map((p) => path.resolve(io.cwd, p)),
    { root: repoRoot, ...(release?.length ? { releaseWorkflows: release } : {}), ...(owners?.length ? { trustedOwners: owners } : {}) },
  );
  io.stdout(format === 'json' ? renderJson(report) : format === 'sarif' ? renderSarif(report) : renderText(report));
  return report.summary.errors > 0 ? 1 : 0;
}

import path from 'node:path';
import { formatError, isCodedError } from '@mcp-release/manifest';
import { exec, type Logger } from '@mcp-release/pipeline';
import { DEFAULT_POLICY_PATH, loadPolicy, recoverPackage } from '@mcp-release/steps';
import { CliError } from './errors.js';
import type { CliIo } from './main.js';

type Values = Record<string, unknown> & { _positional?: string };

/** `mcp-release recover --package NAME --tag TAG`. */
export async function recoverCommand(values: Values, repoRoot: string, io: CliIo, log: Logger): Promise<number> {
  const packageName = values.package as string | undefined;
  const tag = values.tag as string | undefined;
  if (!packageName || !tag) throw new CliError('USAGE', 'recover needs --package NAME and --tag TAG', { hint: 'mcp-release recover --package vmaf-mcp --tag v1.2.3' });
  const policy = await loadPolicy(path.resolve(io.cwd, (values.policy as string | undefined) ?? path.join(repoRoot, DEFAULT_POLICY_PATH)));
  const outDir = path.resolve(io.cwd, (values.out as string | undefined) ?? path.join(repoRoot, 'out', 'recover'));
  const result = await recoverPackage({ repoRoot, policy, packageName, tag, outDir, deps: { exec, env: io.env, now: () => new Date() }, log });
  const published = result.manifest.steps['publish-npm']?.data?.packages as Array<{ outcome: string }> | undefined;
  if (values.json) {
    io.stdout(`${JSON.stringify({ ok: result.run.ok, package: packageName, version: result.version, tag, steps: result.run.steps, ...(result.run.ok ? {} : { error: isCodedError(result.run.error) ? result.run.error.toJSON() : { code: 'INTERNAL', message: String(result.run.error) } }) }, null, 2)}\n`);
  } else if (result.run.ok) {
    io.stdout(`recover: ${packageName}@${result.version} from ${tag}: ${published?.[0]?.outcome ?? 'done'}; the registry serves it with the release's integrity\n`);
  }
  if (!result.run.ok) {
    io.stderr(`${formatError(result.run.error)}\n`);
    return 1;
  }
  return 0;
}

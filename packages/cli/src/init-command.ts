import path from 'node:path';
import { DEFAULT_POLICY_PATH, initRepository, loadPolicy, mergeReleaseParts } from '@mcp-release/steps';
import pkg from '../package.json' with { type: 'json' };
import { CliError } from './errors.js';
import type { CliIo } from './main.js';

type Values = Record<string, unknown> & { _positional?: string; _positionals?: string[] };

/** `mcp-release init`: the workflow templates and a starter policy, filled in for this repository. */
export async function initCommand(values: Values, repoRoot: string, io: CliIo): Promise<number> {
  let owner = values.owner as string | undefined;
  let repo = values['repo-name'] as string | undefined;
  if (!owner || !repo) {
    // A repository that has a policy already names itself there (regenerating its workflows).
    const policy = await loadPolicy(path.join(repoRoot, DEFAULT_POLICY_PATH)).catch(() => undefined);
    const named = (policy?.release?.repository ?? policy?.signer?.repository)?.split('/');
    if (named?.length === 2) [owner, repo] = [owner ?? named[0], repo ?? named[1]];
  }
  if (!owner || !repo) throw new CliError('USAGE', 'init needs the GitHub repository the workflows are for', { hint: 'mcp-release init --owner acme --repo-name widget --package packages/widget --toolkit-sha <commit of mcp-release>' });
  const sha = values['toolkit-sha'] as string | undefined;
  const result = await initRepository({
    repoRoot,
    owner,
    repo,
    ...(values.package ? { packages: values.package as string[] } : {}),
    ...(values['mcp-package'] ? { mcpPackage: values['mcp-package'] as string } : {}),
    ...(values['native-source'] ? { nativeSource: values['native-source'] as string } : {}),
    ...(values['default-branch'] ? { defaultBranch: values['default-branch'] as string } : {}),
    ...(values['node-version'] ? { nodeVersion: values['node-version'] as string } : {}),
    ...(sha ? { toolkit: { sha, version: pkg.version } } : {}),
    ...(values.force ? { force: true } : {}),
    ...(values['workflows-only'] ? { workflowsOnly: true } : {}),
  });
  if (values.json) io.stdout(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
  else io.stdout([`wrote ${result.written.join(', ')}${result.replaced.length ? ` (replaced ${result.replaced.join(', ')})` : ''}`, '', 'Next:', ...result.nextSteps.map((s) => `  - ${s}`), ''].join('\n'));
  return 0;
}

/** `mcp-release merge-manifests --out DIR PART…`: one release folder from the parts of the build jobs. */
export async function mergeCommand(values: Values, io: CliIo): Promise<number> {
  const parts = (values._positionals ?? []).map((p) => path.resolve(io.cwd, p));
  const out = values.out as string | undefined;
  if (!out || !parts.length) throw new CliError('USAGE', 'merge-manifests needs --out DIR and the part folders', { hint: 'mcp-release merge-manifests --out merged parts/plan parts/native-linux-x64 …' });
  const result = await mergeReleaseParts({ parts, outDir: path.resolve(io.cwd, out) });
  if (values.json) io.stdout(`${JSON.stringify({ ok: true, manifest: result.manifestPath, releaseDir: result.releaseDir, files: result.files }, null, 2)}\n`);
  else io.stdout(`merged ${parts.length} part(s) into ${result.releaseDir}: ${result.files} file(s), every digest checked\n`);
  return 0;
}

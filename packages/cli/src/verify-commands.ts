import path from 'node:path';
import { formatError, isCodedError } from '@mcp-release/manifest';
import {
  DEFAULT_POLICY_PATH,
  GITHUB_ACTIONS_ISSUER,
  loadPolicy,
  loadTrustedRoot,
  parseArtifact,
  renderReleaseVerification,
  verifyBundle,
  verifyExitCode,
  verifyRelease,
  type IdentityMatcher,
} from '@mcp-release/steps';
import { CliError } from './errors.js';
import type { CliIo } from './main.js';

type Values = Record<string, unknown> & { _positional?: string };

/** `mcp-release verify-bundle`: one bundle, with cosign verify-blob's flags. Exit 0 verified, 1 not, 3 could not check. */
export async function verifyBundleCommand(values: Values, io: CliIo): Promise<number> {
  const bundle = values.bundle as string | undefined;
  const target = values._positional;
  const exact = values['certificate-identity'] as string | undefined;
  const regexp = values['certificate-identity-regexp'] as string | undefined;
  const issuer = values['certificate-oidc-issuer'] as string | undefined;
  if (!bundle || !target) throw new CliError('USAGE', 'verify-bundle needs --bundle FILE and the file (or sha256:<hex>) it signs', { hint: 'mcp-release verify-bundle --bundle f.sigstore.json --certificate-identity ID --certificate-oidc-issuer URL f' });
  if (Boolean(exact) === Boolean(regexp)) throw new CliError('USAGE', 'give exactly one of --certificate-identity and --certificate-identity-regexp', { hint: 'the identity is the certificate SAN, e.g. https://github.com/OWNER/REPO/.github/workflows/sign.yml@refs/heads/main' });
  if (!issuer) throw new CliError('USAGE', '--certificate-oidc-issuer is required', { hint: `for GitHub Actions: --certificate-oidc-issuer ${GITHUB_ACTIONS_ISSUER}` });
  const identity: IdentityMatcher = exact ? { exact } : { regexp: regexp as string };
  try {
    const { trustedRoot } = await loadTrustedRoot({ ...(values['trusted-root'] ? { file: path.resolve(io.cwd, values['trusted-root'] as string) } : {}), env: io.env, offline: values.offline === true });
    const artifact = parseArtifact(target);
    const result = await verifyBundle({ bundle: path.resolve(io.cwd, bundle), artifact: 'file' in artifact ? { file: path.resolve(io.cwd, artifact.file) } : artifact, identity, issuer, trustedRoot });
    if (values.json) io.stdout(`${JSON.stringify({ ok: true, ...result, statement: undefined }, null, 2)}\n`);
    else io.stdout(`Verified OK: ${target}\n  signed by ${result.san}\n  issuer    ${result.issuer}\n  logged    Rekor index ${result.logIndex}${result.integratedTime ? ` at ${result.integratedTime}` : ''}\n`);
    return 0;
  } catch (err) {
    const code = verifyExitCode(err);
    if (values.json) io.stdout(`${JSON.stringify({ ok: false, status: code === 3 ? 'could-not-check' : 'not-verified', error: isCodedError(err) ? err.toJSON() : { code: 'INTERNAL', message: String(err) } }, null, 2)}\n`);
    io.stderr(`${code === 3 ? 'could not check' : 'NOT verified'}: ${target}\n${formatError(err)}\n`);
    return code;
  }
}

/** `mcp-release verify`: a whole release, from a folder or a tag of a GitHub repository. */
export async function verifyCommand(values: Values, repoRoot: string, io: CliIo): Promise<number> {
  const dir = values.dir as string | undefined;
  const tag = values.tag as string | undefined;
  const repository = values.repository as string | undefined;
  if (Boolean(dir) === Boolean(tag)) throw new CliError('USAGE', 'give either --dir DIR (downloaded release files) or --tag TAG --repository OWNER/NAME', { hint: 'mcp-release verify --tag v1.2.3 --repository acme/vmaf-mcp' });
  if (tag && !repository) throw new CliError('USAGE', '--tag needs --repository OWNER/NAME', { hint: 'mcp-release verify --tag v1.2.3 --repository acme/vmaf-mcp' });
  const policyFile = path.resolve(io.cwd, (values.policy as string | undefined) ?? path.join(repoRoot, DEFAULT_POLICY_PATH));
  const signer = await loadPolicy(policyFile)
    .then((p) => p.signer)
    .catch(() => undefined);
  const identity = {
    repository: (values['signer-repository'] as string | undefined) ?? signer?.repository ?? repository,
    workflow: (values.workflow as string | undefined) ?? signer?.workflow,
    refPattern: (values.ref as string | undefined) ?? signer?.ref,
    issuer: (values['certificate-oidc-issuer'] as string | undefined) ?? signer?.issuer ?? GITHUB_ACTIONS_ISSUER,
  };
  if (!identity.repository || !identity.workflow || !identity.refPattern) {
    throw new CliError('USAGE', 'the signer identity is unknown: no signer: in the policy and no --workflow/--ref flags', { hint: 'pass --workflow release.yml --ref refs/heads/main (and --signer-repository OWNER/NAME), or run from a repository with a release policy' });
  }
  try {
    const { trustedRoot } = await loadTrustedRoot({ ...(values['trusted-root'] ? { file: path.resolve(io.cwd, values['trusted-root'] as string) } : {}), env: io.env, offline: values.offline === true });
    const result = await verifyRelease({
      ...(dir ? { folder: path.resolve(io.cwd, dir) } : {}),
      ...(tag ? { github: { repository: repository as string, tag, ...(io.env.GITHUB_TOKEN || io.env.GH_TOKEN ? { token: (io.env.GITHUB_TOKEN || io.env.GH_TOKEN) as string } : {}), ...(io.env.GITHUB_API_URL ? { baseUrl: io.env.GITHUB_API_URL } : {}) } } : {}),
      policy: identity as { repository: string; workflow: string; refPattern: string; issuer: string },
      trustedRoot,
      ...(values.registry ? { registry: values.registry as string } : {}),
    });
    io.stdout(values.json ? `${JSON.stringify(result, null, 2)}\n` : renderReleaseVerification(result));
    return verifyExitCode(result);
  } catch (err) {
    const code = verifyExitCode(err);
    if (values.json) io.stdout(`${JSON.stringify({ status: 'could-not-check', error: isCodedError(err) ? err.toJSON() : { code: 'INTERNAL', message: String(err) } }, null, 2)}\n`);
    io.stderr(`${formatError(err)}\n`);
    return code;
  }
}

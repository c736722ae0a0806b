import semver from 'semver';
import type { Plan } from '@mcp-release/manifest';
import type { Policy } from '../../policy.js';

/** The version a release is named after: the first planned package's, else the version in the tag. */
export function releaseVersion(plan: Plan): string | undefined {
  const first = plan.packages[0]?.version;
  if (first) return first;
  const m = /(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$/.exec(plan.tag);
  return m && semver.valid(m[1]) ? (m[1] as string) : undefined;
}

/** The release title: publish.github.releaseName with {tag} and {version} replaced; default the tag. */
export function releaseTitle(policy: Policy, plan: Plan): string {
  const scheme = policy.publish?.github?.releaseName;
  if (!scheme) return plan.tag;
  const version = releaseVersion(plan) ?? plan.tag;
  return scheme.split('{tag}').join(plan.tag).split('{version}').join(version);
}

/** publish.github.prerelease: true or false as given; `auto` (the default) when the version is a semver prerelease. */
export function isPrerelease(policy: Policy, plan: Plan): boolean {
  const setting = policy.publish?.github?.prerelease ?? 'auto';
  if (typeof setting === 'boolean') return setting;
  const version = releaseVersion(plan);
  return Boolean(version && semver.prerelease(version)?.length);
}

/** Short release notes: what the release holds and how a consumer checks it. */
export function releaseNotes(input: { plan: Plan; repository: string }): string {
  const { plan, repository } = input;
  const lines = [`Release ${plan.tag} of commit ${plan.commit}.`, ''];
  if (plan.packages.length) {
    lines.push('| package | version | npm dist-tag |', '| --- | --- | --- |');
    for (const p of plan.packages) lines.push(`| \`${p.name}\` | ${p.version} | ${p.distTag ?? 'latest'} |`);
    lines.push('');
  }
  lines.push(
    '### Verify',
    '',
    'Every file is listed in `SHA256SUMS` and signed with Sigstore (`<file>.sigstore.json`); the provenance names each file and the commit. To check them with only `gh` and `cosign`:',
    '',
    '```sh',
    `gh release download ${plan.tag} -R ${repository} -p verify.sh`,
    `sh verify.sh --tag ${plan.tag} --repo ${repository}`,
    '```',
    '',
    'or with mcp-release:',
    '',
    '```sh',
    `mcp-release verify --tag ${plan.tag} --repository ${repository}`,
    '```',
    '',
  );
  return lines.join('\n');
}

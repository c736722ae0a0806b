import { skip, type Step } from '@mcp-release/pipeline';
import type { ReleaseContext, ReleaseOptions } from '../../options.js';
import { digestOf } from '../../source.js';
import { npmPublishSettings, npmReleases, publishNpm, type NpmPublishSettings, type PublishedPackage, type PublishNpmDeps } from './publish.js';
import { withRegistry } from './registry.js';
import { waitForRegistry, type WaitDeps } from './wait.js';

function noTarballs(ctx: ReleaseContext): ReturnType<typeof skip> | undefined {
  return ctx.manifest.artifacts.some((a) => a.kind === 'npm-tarball') ? undefined : skip('there are no npm tarballs in the release');
}

/** What the publish depends on: the tarballs as the manifest records them and where and how they go. */
async function publishFingerprint(ctx: ReleaseContext, step: string): Promise<string> {
  const settings = npmPublishSettings(ctx.options.policy, await withRegistry(ctx.deps, ctx.repoRoot));
  return digestOf({
    step,
    registry: settings.registry,
    access: settings.access,
    provenance: settings.provenance,
    packages: npmReleases(ctx.manifest, settings.prereleaseTag).map((r) => [r.name, r.version, r.sha512, r.distTag]),
  });
}

/** The job summary's lines for the publish: one per package. */
export function renderPublishMarkdown(settings: Pick<NpmPublishSettings, 'registry' | 'provenance'>, packages: readonly PublishedPackage[]): string {
  const lines = [`**npm** (${settings.registry}, trusted publishing):`];
  for (const p of packages) {
    const what = p.outcome === 'published' ? 'published' : 'already published (left as it was)';
    const provenance = p.attestation ? `, provenance ${p.attestation === 'stored' ? 'stored' : 'already stored'}` : settings.provenance === 'npm' ? ', npm provenance' : '';
    lines.push(`- \`${p.name}@${p.version}\` ${what}, dist-tag \`${p.distTag}\`${provenance}, \`${p.integrity}\``);
  }
  return lines.join('\n');
}

/** publish-npm with injected timing (tests); `publishNpmStep` uses the real clock and sleep. */
export function createPublishNpmStep(deps: PublishNpmDeps = {}): Step<ReleaseOptions> {
  return {
    name: 'publish-npm',
    description: 'publish the npm tarballs through trusted publishing (OIDC, no token)',
    skip: noTarballs,
    fingerprint: (ctx) => publishFingerprint(ctx, 'publish-npm'),
    async run(ctx) {
      const { settings, packages } = await publishNpm(ctx, deps);
      return {
        notes: packages.map((p) => `${p.name}@${p.version} ${p.outcome} (${p.distTag})`),
        data: {
          registry: settings.registry,
          provenance: settings.provenance,
          packages: packages.map((p) => ({ ...p })),
          markdown: renderPublishMarkdown(settings, packages),
        },
      };
    },
  };
}

export const publishNpmStep: Step<ReleaseOptions> = createPublishNpmStep();

/** wait-registry with injected timing (tests); `waitRegistryStep` uses the real clock and sleep. */
export function createWaitRegistryStep(deps: WaitDeps = {}): Step<ReleaseOptions> {
  return {
    name: 'wait-registry',
    description: 'wait until the registry serves every published version with the same integrity',
    skip: noTarballs,
    fingerprint: (ctx) => publishFingerprint(ctx, 'wait-registry'),
    async run(ctx) {
      const { registry, packages, notes } = await waitForRegistry(ctx, deps);
      return { notes, data: { registry, packages: packages.map((p) => ({ ...p })) } };
    },
  };
}

export const waitRegistryStep: Step<ReleaseOptions> = createWaitRegistryStep();

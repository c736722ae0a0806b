import { StepError } from '../../errors.js';
import type { ReleaseContext } from '../../options.js';
import { npmPublishSettings, npmReleases, type NpmRelease, type PublishOutcome } from './publish.js';
import { differentTarball, fetchPackument, realTiming, TransientError, versionState, type Timing } from './registry.js';
import { withRegistry } from './registry.js';

/** The first pause between two looks at the registry; it grows to MAX_POLL_MS. */
export const FIRST_POLL_MS = 1000;
export const MAX_POLL_MS = 10_000;

export interface ServedPackage {
  name: string;
  version: string;
  integrity: string;
  distTag: string;
  /** What dist-tags[distTag] names on the registry at the end. */
  taggedVersion: string | undefined;
  /** How many times the registry was asked. */
  polls: number;
}

export interface WaitDeps {
  timing?: Timing;
}

/** The outcome publish-npm recorded for a package; a package it did not record counts as published now. */
function recordedOutcome(ctx: ReleaseContext, name: string): PublishOutcome {
  const packages = ctx.manifest.steps['publish-npm']?.data?.packages;
  const entry = Array.isArray(packages) ? (packages as Array<{ name?: unknown; outcome?: unknown }>).find((p) => p.name === name) : undefined;
  return entry?.outcome === 'already-published' ? 'already-published' : 'published';
}

/**
 * Polls the registry until it serves exactly this version with the release's integrity and the
 * dist-tag names it (bounded by publish.npm.waitSeconds). A version served with other contents
 * fails at once.
 */
async function waitForOne(ctx: ReleaseContext, r: NpmRelease, registry: string, waitSeconds: number, timing: Timing, strictTag: boolean): Promise<ServedPackage> {
  const spec = `${r.name}@${r.version}`;
  const started = timing.now();
  const deadline = started + waitSeconds * 1000;
  let pause = FIRST_POLL_MS;
  let polls = 0;
  let seen = 'not served yet';
  for (;;) {
    polls += 1;
    let taggedVersion: string | undefined;
    try {
      const packument = await fetchPackument(registry, r.name);
      const state = versionState(packument, r.version, r.sha512);
      if (state.state === 'different') throw differentTarball(r.name, r.version, r.sha512, state);
      taggedVersion = packument?.['dist-tags']?.[r.distTag];
      if (state.state === 'same') {
        const latest = packument?.['dist-tags']?.latest;
        if (strictTag && r.distTag !== 'latest' && latest === r.version) {
          throw new StepError('NPM_PRERELEASE_IS_LATEST', `the registry tags the prerelease ${spec} as latest: every user installing ${r.name} now gets a prerelease`, {
            hint: `move latest back: \`npm dist-tag add ${r.name}@<last stable version> latest\`, and check that publish.npm.prereleaseTag is not latest`,
          });
        }
        if (taggedVersion === r.version || !strictTag) return { name: r.name, version: r.version, integrity: r.integrity, distTag: r.distTag, taggedVersion, polls };
        seen = `served, but dist-tag ${r.distTag} names ${taggedVersion ?? 'nothing'}`;
      } else seen = 'not served yet';
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      seen = `registry failing (${err.message})`;
    }
    const now = timing.now();
    if (now >= deadline) {
      const tagOnly = seen.startsWith('served');
      throw new StepError(
        tagOnly ? 'NPM_DIST_TAG_MISMATCH' : 'NPM_WAIT_TIMEOUT',
        `${spec} was published, but after ${waitSeconds} s the registry still shows it as ${seen}`,
        {
          hint: tagOnly
            ? `point the tag at this release: \`npm dist-tag add ${spec} ${r.distTag}\` (another release may have moved it meanwhile)`
            : 'the registry is slow to serve new versions; re-run this step later (mcp-release resume), or raise publish.npm.waitSeconds in the release policy',
        },
      );
    }
    ctx.progress(`waiting for the registry to serve ${spec} (${seen}; ${Math.round((now - started) / 1000)} of ${waitSeconds} s)`);
    await timing.sleep(Math.min(pause, deadline - now));
    pause = Math.min(Math.round(pause * 1.5), MAX_POLL_MS);
  }
}

/**
 * After publish-npm: waits until the registry serves every released version with the same
 * integrity and its dist-tag names it. For a version published by an earlier release
 * (already-published), a tag that has moved on since is reported, not waited for.
 */
export async function waitForRegistry(ctx: ReleaseContext, deps: WaitDeps = {}): Promise<{ registry: string; packages: ServedPackage[]; notes: string[] }> {
  const timing = deps.timing ?? realTiming;
  const settings = npmPublishSettings(ctx.options.policy, await withRegistry(ctx.deps, ctx.repoRoot));
  const notes: string[] = [];
  const packages: ServedPackage[] = [];
  for (const r of npmReleases(ctx.manifest, settings.prereleaseTag)) {
    const strict = recordedOutcome(ctx, r.name) === 'published';
    const served = await waitForOne(ctx, r, settings.registry, settings.waitSeconds, timing, strict);
    if (served.taggedVersion !== r.version) notes.push(`${r.name}@${r.version}: dist-tag ${r.distTag} now names ${served.taggedVersion ?? 'nothing'} (published by an earlier run)`);
    else notes.push(`${r.name}@${r.version} served with ${r.integrity.slice(0, 20)}… (dist-tag ${r.distTag})`);
    packages.push(served);
  }
  return { registry: settings.registry, packages, notes };
}

import type { Lab } from '@mcp-release/lab';
import type { Manifest } from '@mcp-release/manifest';
import { PACKAGE, REPOSITORY, TAG } from './world.js';

/** What a consumer can see of the widget's release: the registry, the GitHub release, the tag. */
export interface PublicState {
  /** version → integrity, as the registry serves them. */
  versions: Record<string, string>;
  distTags: Record<string, string>;
  /** Every release of the tag (more than one would be a duplicate). */
  releases: Array<{ id: number; draft: boolean; assets: Record<string, string> }>;
  tag?: { commit: string | null; annotated: boolean };
}

export const BOOTSTRAP_VERSION = '0.0.0-bootstrap.0';

export async function readPublicState(lab: Lab): Promise<PublicState> {
  const res = await fetch(new URL(PACKAGE, lab.registry.url), { signal: AbortSignal.timeout(20_000) });
  const doc = res.status === 200 ? ((await res.json()) as { versions?: Record<string, { dist?: { integrity?: string } }>; 'dist-tags'?: Record<string, string> }) : {};
  if (res.status !== 200) await res.body?.cancel();
  const versions = Object.fromEntries(Object.entries(doc.versions ?? {}).map(([v, m]) => [v, m.dist?.integrity ?? '']));
  const gh = lab.github.state();
  const [owner, repo] = REPOSITORY.split('/') as [string, string];
  const releases = gh.releases
    .filter((r) => r.owner === owner && r.repo === repo && r.tag_name === TAG)
    .map((r) => ({ id: r.id, draft: r.draft, assets: Object.fromEntries(r.assets.map((a) => [a.name, a.digest])) }));
  const tag = gh.repositories.find((r) => r.owner === owner && r.repo === repo)?.tags.find((t) => t.name === TAG);
  return { versions, distTags: doc['dist-tags'] ?? {}, releases, ...(tag ? { tag: { commit: tag.commit, annotated: tag.annotated } } : {}) };
}

/** What is public beyond the starting point (the bootstrap version): empty when nothing is. */
export function publicParts(state: PublicState): string[] {
  const parts: string[] = [];
  const extra = Object.keys(state.versions).filter((v) => v !== BOOTSTRAP_VERSION);
  if (extra.length) parts.push(`npm ${extra.join(', ')}`);
  if (state.releases.some((r) => !r.draft)) parts.push('a published release');
  if (state.tag) parts.push(`the tag ${TAG}`);
  return parts;
}

/** What must hold of any state a failure leaves: the starting version is still there, and no release of the tag was made twice. */
export function leftoverProblems(state: PublicState): string[] {
  const problems: string[] = [];
  if (!(BOOTSTRAP_VERSION in state.versions)) problems.push('the bootstrap version is gone from the registry');
  if (state.releases.length > 1) problems.push(`${state.releases.length} releases for ${TAG}`);
  return problems;
}

/** sha512 hex → the registry's `sha512-<base64>` integrity. */
export function integrityOf(sha512Hex: string): string {
  return `sha512-${Buffer.from(sha512Hex, 'hex').toString('base64')}`;
}

/**
 * The problems with a finished release: the registry serves exactly the bootstrap version and the
 * planned one with the tarball's integrity, `latest` names it, there is one release for the tag,
 * published, holding exactly the release files with their digests, and the tag is annotated on the
 * planned commit. Every step of the manifest succeeded or was skipped.
 */
export function finishedProblems(state: PublicState, manifest: Manifest, commit: string): string[] {
  const problems: string[] = [];
  const tarball = manifest.artifacts.find((a) => a.kind === 'npm-tarball');
  const planned = manifest.plan.packages.find((p) => p.name === PACKAGE)?.version;
  if (!tarball || !planned) return ['the manifest has no npm tarball or no planned version of the widget'];
  const versions = Object.keys(state.versions).sort();
  const want = [BOOTSTRAP_VERSION, planned].sort();
  if (JSON.stringify(versions) !== JSON.stringify(want)) problems.push(`registry versions ${versions.join(', ') || '(none)'}; expected ${want.join(', ')}`);
  if (state.versions[planned] !== undefined && !state.versions[planned].split(/\s+/).includes(integrityOf(tarball.sha512))) {
    problems.push(`registry integrity of ${planned} is ${state.versions[planned]}, the manifest's tarball is ${integrityOf(tarball.sha512)}`);
  }
  if (state.distTags.latest !== planned) problems.push(`dist-tag latest is ${state.distTags.latest ?? '(none)'}, not ${planned}`);
  if (state.releases.length !== 1) problems.push(`${state.releases.length} releases for ${TAG}; expected exactly one`);
  const release = state.releases[0];
  if (release) {
    if (release.draft) problems.push(`the release ${TAG} is still a draft`);
    const expected = Object.fromEntries(manifest.artifacts.map((a) => [a.path, `sha256:${a.sha256}`]));
    for (const [name, digest] of Object.entries(expected)) {
      if (!(name in release.assets)) problems.push(`asset ${name} is missing`);
      else if (release.assets[name] !== digest) problems.push(`asset ${name} has ${release.assets[name]}, the manifest ${digest}`);
    }
    for (const name of Object.keys(release.assets)) if (!(name in expected)) problems.push(`asset ${name} is not a release file`);
  }
  if (!state.tag) problems.push(`the tag ${TAG} is missing`);
  else {
    if (!state.tag.annotated) problems.push(`the tag ${TAG} is not annotated`);
    if (state.tag.commit !== commit || manifest.plan.commit !== commit) problems.push(`the tag names ${state.tag.commit}, the plan ${manifest.plan.commit}, the repository ${commit}`);
  }
  const unfinished = Object.entries(manifest.steps).filter(([, s]) => s.state !== 'succeeded' && s.state !== 'skipped');
  if (unfinished.length) problems.push(`manifest steps not finished: ${unfinished.map(([n, s]) => `${n} ${s.state}`).join(', ')}`);
  return problems;
}

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline as pipelineCallback, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { hashingPassThrough, ManifestError, readError } from '@mcp-release/manifest';
import { StepError } from '../../errors.js';
import { githubApiError, statusOf, STREAMING, TransientError, withRetry, type GithubReleaseClient } from './client.js';
import { stallGuard } from './stall.js';

/** An asset of a GitHub release, as far as releasing goes. */
export interface ReleaseAsset {
  id: number;
  name: string;
  size: number;
  /** `sha256:<hex>` when GitHub reports it (it does for assets uploaded since mid-2025), else null. */
  digest: string | null;
  /** `uploaded`, or `starter` for an upload that never finished. */
  state: string;
}

export interface GithubRelease {
  id: number;
  tag: string;
  draft: boolean;
  prerelease: boolean;
  immutable: boolean;
  targetCommitish: string;
  name: string | null;
  body: string | null;
  /** The release's web page. */
  url: string;
  /** Where assets go (a URI template with {?name,label}). */
  uploadUrl: string;
  assets: ReleaseAsset[];
}

/** A release file as the manifest records it. */
export interface ExpectedAsset {
  name: string;
  size: number;
  sha256: string;
}

/** A release file to upload: its record and where it is on disk. */
export interface ReleaseFile extends ExpectedAsset {
  file: string;
}

type ApiRelease = {
  id: number;
  tag_name: string;
  draft: boolean;
  prerelease: boolean;
  immutable?: boolean;
  target_commitish: string;
  name: string | null;
  body?: string | null;
  html_url: string;
  upload_url: string;
  assets?: ApiAsset[];
};
type ApiAsset = { id: number; name: string; size: number; digest?: string | null; state?: string };

function toAsset(a: ApiAsset): ReleaseAsset {
  return { id: a.id, name: a.name, size: a.size, digest: a.digest ?? null, state: a.state ?? 'uploaded' };
}

function toRelease(r: ApiRelease): GithubRelease {
  return {
    id: r.id,
    tag: r.tag_name,
    draft: r.draft,
    prerelease: r.prerelease,
    immutable: Boolean(r.immutable),
    targetCommitish: r.target_commitish,
    name: r.name,
    body: r.body ?? null,
    url: r.html_url,
    uploadUrl: r.upload_url,
    assets: (r.assets ?? []).map(toAsset),
  };
}

const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/;

/** The asset's sha256 as GitHub reports it, or undefined when it reports none (or another algorithm). */
export function reportedSha256(asset: Pick<ReleaseAsset, 'digest'>): string | undefined {
  return SHA256_DIGEST.exec(asset.digest ?? '')?.[1];
}

/** Why a name cannot be a release asset, or undefined when it can. */
export function assetNameProblem(name: string): string | undefined {
  if (!name || name.length > 255) return 'is empty or longer than 255 characters';
  if (!name.isWellFormed()) return 'is not valid UTF-8 text (it holds a lone surrogate)';
  if (name.includes('/') || name.includes('\\')) return 'has a folder in it (release assets are flat)';
  if (name === '.' || name === '..' || name.startsWith('.')) return 'starts with a dot';
  if ([...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return 'has control characters';
  return undefined;
}

const CONTENT_TYPES: Array<[RegExp, string]> = [
  [/\.json$/, 'application/json'],
  [/\.(tgz|tar\.gz)$/, 'application/gzip'],
  [/\.sh$/, 'text/x-shellscript'],
  [/(^SHA256SUMS$|\.(txt|md)$)/, 'text/plain'],
];

export function contentTypeOf(name: string): string {
  return CONTENT_TYPES.find(([re]) => re.test(name))?.[1] ?? 'application/octet-stream';
}

// --- reading ------------------------------------------------------------------------------------

/** The published release of a tag and the drafts made for it (drafts are not found by their tag). */
export async function findReleases(client: GithubReleaseClient, tag: string): Promise<{ published?: GithubRelease; drafts: GithubRelease[] }> {
  const { octokit, owner, repo } = client;
  let published: GithubRelease | undefined;
  try {
    published = await withRetry(client, `look up the release ${tag}`, async () => toRelease((await octokit.rest.repos.getReleaseByTag({ owner, repo, tag })).data as ApiRelease));
  } catch (err) {
    if (statusOf(err) !== 404) throw githubApiError(`look up the release ${tag} of ${client.repository}`, err, client);
  }
  let all: ApiRelease[];
  try {
    all = await withRetry(client, `list the releases of ${client.repository}`, () => octokit.paginate(octokit.rest.repos.listReleases, { owner, repo, per_page: 100 }) as Promise<ApiRelease[]>);
  } catch (err) {
    throw githubApiError(`list the releases of ${client.repository}`, err, client);
  }
  const drafts = all.filter((r) => r.draft && r.tag_name === tag).map(toRelease);
  if (!published) {
    const listed = all.find((r) => !r.draft && r.tag_name === tag);
    if (listed) published = toRelease(listed);
  }
  return { ...(published && !published.draft ? { published } : {}), drafts };
}

/** Every asset of a release, fresh from the API (not the release's possibly shortened list). */
export async function listAssets(client: GithubReleaseClient, releaseId: number): Promise<ReleaseAsset[]> {
  const { octokit, owner, repo } = client;
  try {
    const assets = await withRetry(client, `list the assets of release ${releaseId}`, () => octokit.paginate(octokit.rest.repos.listReleaseAssets, { owner, repo, release_id: releaseId, per_page: 100 }));
    return (assets as ApiAsset[]).map(toAsset);
  } catch (err) {
    throw githubApiError(`list the assets of release ${releaseId} of ${client.repository}`, err, client);
  }
}

/**
 * Streams one asset's bytes (drafts too: through the API, with the token) into `sink`, hashing them.
 * A download that stalls for the client's time limit is aborted (and retried by the caller).
 */
async function streamAsset(client: GithubReleaseClient, asset: ReleaseAsset, sink: () => NodeJS.WritableStream): Promise<{ sha256: string; size: number }> {
  const { octokit, owner, repo } = client;
  const guard = stallGuard(client.timeoutMs, `the download of ${asset.name}`);
  try {
    const res = await octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      owner,
      repo,
      asset_id: asset.id,
      headers: { accept: 'application/octet-stream' },
      request: { parseSuccessResponseBody: false, ...STREAMING, signal: guard.signal },
    });
    const body = res.data as unknown as WebReadableStream<Uint8Array> | null;
    if (!body) throw new TransientError(`the answer for ${asset.name} had no body`);
    const meter = hashingPassThrough();
    await pipeline(Readable.fromWeb(body), guard.meter(), meter.stream, sink());
    const got = meter.result();
    const reported = reportedSha256(asset);
    if (got.size !== asset.size || (reported && reported !== got.sha256)) {
      throw new TransientError(`the download of ${asset.name} came out as ${got.size} bytes, sha256:${got.sha256}; GitHub records ${asset.size} bytes${asset.digest ? `, ${asset.digest}` : ''}`);
    }
    return got;
  } finally {
    guard.stop();
  }
}

const discard = (): NodeJS.WritableStream => new Writable({ write: (_chunk, _enc, done) => done() });

/** An asset's sha256: the digest GitHub reports, else its bytes downloaded (streamed, never stored) and hashed. */
export async function assetSha256(client: GithubReleaseClient, asset: ReleaseAsset): Promise<string> {
  const reported = reportedSha256(asset);
  if (reported) return reported;
  try {
    return (await withRetry(client, `download ${asset.name} to hash it`, () => streamAsset(client, asset, discard), asset.name)).sha256;
  } catch (err) {
    throw githubApiError(`download the release asset ${asset.name} to hash it`, err, client);
  }
}

/** How the assets differ from the expected files: one line per difference, none when they match exactly. */
export async function compareAssets(client: GithubReleaseClient, assets: ReleaseAsset[], expected: ExpectedAsset[]): Promise<string[]> {
  const out: string[] = [];
  const byName = new Map(assets.map((a) => [a.name, a]));
  for (const e of expected) {
    const a = byName.get(e.name);
    if (!a) out.push(`${e.name}: missing on GitHub`);
    else if (a.state !== 'uploaded') out.push(`${e.name}: its upload never finished (state ${a.state})`);
    else if (a.size !== e.size) out.push(`${e.name}: ${a.size} bytes on GitHub, ${e.size} in this release`);
    else {
      const sha = await assetSha256(client, a);
      if (sha !== e.sha256) out.push(`${e.name}: sha256 ${sha.slice(0, 16)}… on GitHub, ${e.sha256.slice(0, 16)}… in this release`);
    }
  }
  const names = new Set(expected.map((e) => e.name));
  for (const a of assets) if (!names.has(a.name)) out.push(`${a.name}: on GitHub but not in this release`);
  return out;
}

function publishedDiffers(client: GithubReleaseClient, release: GithubRelease, diffs: string[]): StepError {
  return new StepError('RELEASE_ALREADY_PUBLISHED', `${release.tag} is already published on ${client.repository} (${release.url}) with other files than this release: ${diffs.length} difference(s)`, {
    details: diffs.slice(0, 20),
    hint: 'a published release is never changed: release a new version, or, if the published one must go, delete it on GitHub by hand and run again',
  });
}

function ambiguous(client: GithubReleaseClient, tag: string, drafts: GithubRelease[]): StepError {
  return new StepError('RELEASE_DRAFT_AMBIGUOUS', `${drafts.length} draft releases on ${client.repository} are for ${tag}; it is not clear which one to use`, {
    details: drafts.map((d) => `draft ${d.id}: ${d.url}`),
    hint: 'delete the extra drafts on GitHub (keep one, or none), then run again',
  });
}

// --- 1. the draft -------------------------------------------------------------------------------

export interface EnsureDraftInput {
  tag: string;
  /** The planned commit (target_commitish). */
  commit: string;
  name: string;
  body: string;
  prerelease: boolean;
  /** The release's files, to recognise a release that is already published with exactly these. */
  expected: ExpectedAsset[];
}

export interface EnsureDraftResult {
  /** `created` a new draft, `reused` the draft of an earlier run, or found the release `already-published` with the same files. */
  state: 'created' | 'reused' | 'already-published';
  release: GithubRelease;
}

/**
 * The draft release of `tag`: made (draft, at the planned commit, with its notes), or the earlier
 * run's draft brought up to date. A published release of the tag is never touched: when its assets
 * are exactly the expected files the result is `already-published` (a re-run has nothing to do),
 * otherwise this fails.
 */
export async function ensureDraft(client: GithubReleaseClient, input: EnsureDraftInput): Promise<EnsureDraftResult> {
  const { octokit, owner, repo } = client;
  const found = await findReleases(client, input.tag);
  if (found.published) {
    const diffs = await compareAssets(client, await listAssets(client, found.published.id), input.expected);
    if (diffs.length) throw publishedDiffers(client, found.published, diffs);
    return { state: 'already-published', release: found.published };
  }
  if (found.drafts.length > 1) throw ambiguous(client, input.tag, found.drafts);
  const existing = found.drafts[0];
  if (existing) {
    const want = { target_commitish: input.commit, name: input.name, body: input.body, prerelease: input.prerelease };
    const have = { target_commitish: existing.targetCommitish, name: existing.name, body: existing.body, prerelease: existing.prerelease };
    if (JSON.stringify(want) === JSON.stringify(have)) return { state: 'reused', release: existing };
    try {
      const res = await withRetry(client, `update the draft of ${input.tag}`, () => octokit.rest.repos.updateRelease({ owner, repo, release_id: existing.id, ...want }));
      return { state: 'reused', release: toRelease(res.data as ApiRelease) };
    } catch (err) {
      throw githubApiError(`update the draft release ${existing.id} of ${input.tag}`, err, client);
    }
  }
  try {
    const release = await withRetry(client, `create the draft of ${input.tag}`, async (attempt) => {
      if (attempt > 0) {
        // the failed attempt may have made the draft after all: never make a second one
        const again = await findReleases(client, input.tag);
        if (again.drafts.length > 1) throw ambiguous(client, input.tag, again.drafts);
        if (again.drafts[0]) return again.drafts[0];
      }
      const res = await octokit.rest.repos.createRelease({ owner, repo, tag_name: input.tag, target_commitish: input.commit, name: input.name, body: input.body, draft: true, prerelease: input.prerelease });
      return toRelease(res.data as ApiRelease);
    });
    if (!release.draft) {
      throw new StepError('RELEASE_NOT_A_DRAFT', `GitHub made ${input.tag} as a published release, not a draft`, { hint: 'check the GitHub API URL (GITHUB_API_URL): it does not behave like GitHub' });
    }
    return { state: 'created', release };
  } catch (err) {
    throw githubApiError(`create the draft release ${input.tag} on ${client.repository}`, err, client);
  }
}

// --- 2. the assets ------------------------------------------------------------------------------

export interface UploadOptions {
  /** Replace assets whose bytes differ and delete assets this release does not have; without it both are errors. */
  replace?: boolean;
  /** Uploads at once; each streams from disk, so this bounds connections, not memory. Default 3. */
  concurrency?: number;
}

export interface UploadResult {
  uploaded: string[];
  /** Already on the draft with the same digest. */
  skipped: string[];
  /** On the draft with other bytes; deleted and uploaded again (only with replace). */
  replaced: string[];
  /** On the draft but not in this release; deleted (only with replace). */
  deleted: string[];
}

async function deleteAsset(client: GithubReleaseClient, asset: ReleaseAsset): Promise<void> {
  const { octokit, owner, repo } = client;
  try {
    await withRetry(client, `delete ${asset.name}`, async (attempt) => {
      try {
        await octokit.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: asset.id });
      } catch (err) {
        // a retried delete whose first attempt went through
        if (!(attempt > 0 && statusOf(err) === 404)) throw err;
      }
    }, asset.name);
  } catch (err) {
    throw githubApiError(`delete the release asset ${asset.name}`, err, client);
  }
  client.onProgress({ action: 'deleted', name: asset.name, message: `deleted ${asset.name} from the draft` });
}

/**
 * One upload attempt: the file streamed from disk through a hash, with its length; the result
 * checked both ways. An upload that stalls for the client's time limit (no byte taken, or no answer
 * after the last one) is aborted, and retried by the caller.
 */
async function uploadOnce(client: GithubReleaseClient, release: Pick<GithubRelease, 'id' | 'uploadUrl'>, f: ReleaseFile): Promise<ReleaseAsset> {
  const { octokit, owner, repo } = client;
  let size: number;
  try {
    size = (await stat(f.file)).size;
  } catch (err) {
    throw readError(f.file, err);
  }
  if (size !== f.size) throw changed(f, `${size} bytes on disk, ${f.size} on record`);
  const meter = hashingPassThrough();
  const guard = stallGuard(client.timeoutMs, `the upload of ${f.name}`);
  let readFailure: unknown;
  const body = pipelineCallback(createReadStream(f.file, { highWaterMark: 1 << 20 }), meter.stream, guard.meter(), (err) => {
    if (err) readFailure ??= err;
  });
  let asset: ReleaseAsset;
  try {
    const res = await octokit.rest.repos.uploadReleaseAsset({
      owner,
      repo,
      release_id: release.id,
      url: release.uploadUrl,
      name: f.name,
      // a stream: octokit hands it to fetch as is, and it goes out as it is read
      data: body as unknown as string,
      headers: { 'content-type': contentTypeOf(f.name), 'content-length': f.size },
      // Redirects refused: otherwise node's fetch copies the request to be able to follow one, and
      // the copy keeps every byte of the streamed body in memory until the upload ends (the whole
      // file). An upload is never redirected, and a streamed body could not be sent twice anyway.
      request: { ...STREAMING, redirect: 'error', signal: guard.signal },
    });
    asset = toAsset(res.data as ApiAsset);
  } catch (err) {
    body.destroy();
    const code = (readFailure as NodeJS.ErrnoException | undefined)?.code;
    if (code && code !== 'ERR_STREAM_PREMATURE_CLOSE' && !guard.signal.aborted) throw readError(f.file, readFailure);
    throw err;
  } finally {
    guard.stop();
  }
  const sent = meter.result();
  if (sent.sha256 !== f.sha256 || sent.size !== f.size) {
    await deleteAsset(client, asset);
    throw changed(f, `sha256 ${sent.sha256.slice(0, 16)}… sent, ${f.sha256.slice(0, 16)}… on record`);
  }
  const reported = reportedSha256(asset);
  if (asset.size !== f.size || (reported && reported !== f.sha256)) {
    await deleteAsset(client, asset);
    throw new TransientError(`GitHub recorded ${f.name} as ${asset.size} bytes${asset.digest ? `, ${asset.digest}` : ''}; ${f.size} bytes, sha256:${f.sha256} were sent`);
  }
  return asset;
}

function changed(f: ReleaseFile, why: string): ManifestError {
  return new ManifestError('ARTIFACT_CHANGED', `${f.name} changed after the release recorded it (${why}); it was not uploaded`, {
    hint: 'something modified the release folder; rebuild the file (re-run the step that made it) and sign again',
  });
}

async function uploadOne(client: GithubReleaseClient, release: Pick<GithubRelease, 'id' | 'uploadUrl'>, f: ReleaseFile): Promise<ReleaseAsset> {
  try {
    return await withRetry(
      client,
      `upload ${f.name}`,
      async (attempt) => {
        if (attempt > 0) {
          // the failed attempt may have left the asset, whole or in part
          const left = (await listAssets(client, release.id)).find((a) => a.name === f.name);
          if (left?.state === 'uploaded' && left.size === f.size && reportedSha256(left) === f.sha256) return left;
          if (left) await deleteAsset(client, left);
        }
        return uploadOnce(client, release, f);
      },
      f.name,
    );
  } catch (err) {
    if (err instanceof TransientError) throw new StepError('RELEASE_UPLOAD_DAMAGED', `could not upload ${f.name} intact: ${err.message}`, { hint: 'the transfer was damaged each time; check the network and run again' });
    throw githubApiError(`upload the release asset ${f.name}`, err, client);
  }
}

/**
 * Runs `fn` over the items, `limit` at a time. After a failure no further item starts; the ones
 * under way finish, and then the first failure is thrown (nothing keeps uploading behind it).
 */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next] as T;
      next += 1;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
}

/**
 * Uploads the release files to a draft, each streamed from disk with its length. An asset already
 * there with the same digest is skipped, so a re-run continues where the last one stopped. An
 * asset with other bytes, or one that is not a release file, stops the upload before anything
 * changes, unless `replace` (then it is deleted, and uploaded again when it is a release file).
 * An asset whose upload never finished is always removed. Failures with 5xx answers or of the
 * network are retried; 4xx answers are not.
 */
export async function uploadAssets(client: GithubReleaseClient, release: Pick<GithubRelease, 'id' | 'uploadUrl' | 'draft' | 'tag'>, files: ReleaseFile[], options: UploadOptions = {}): Promise<UploadResult> {
  if (!release.draft) {
    throw new StepError('RELEASE_NOT_A_DRAFT', `release ${release.tag} is published; its assets are never changed`, { hint: 'assets go to a draft only; release a new version instead' });
  }
  const seen = new Set<string>();
  for (const f of files) {
    const problem = assetNameProblem(f.name);
    if (problem) {
      throw new StepError('RELEASE_ASSET_NAME', `release file ${JSON.stringify(f.name)} cannot be a GitHub release asset: it ${problem}`, { hint: 'release files are flat, plainly named files; rename it in the step that produces it' });
    }
    if (seen.has(f.name)) throw new StepError('RELEASE_ASSET_NAME', `two release files are named ${f.name}`, { hint: 'release assets need unique names; rename one in the step that produces it' });
    seen.add(f.name);
  }
  const existing = await listAssets(client, release.id);
  const byName = new Map(existing.map((a) => [a.name, a]));
  const conflicts: string[] = [];
  const work: Array<{ file: ReleaseFile; old?: ReleaseAsset; replacing: boolean }> = [];
  const result: UploadResult = { uploaded: [], skipped: [], replaced: [], deleted: [] };
  for (const f of files) {
    const a = byName.get(f.name);
    if (!a) work.push({ file: f, replacing: false });
    else if (a.state !== 'uploaded') work.push({ file: f, old: a, replacing: false });
    else {
      const sha = a.size === f.size ? await assetSha256(client, a) : undefined;
      if (sha === f.sha256) {
        result.skipped.push(f.name);
        client.onProgress({ action: 'skipped', name: f.name, message: `${f.name} is already on the draft (same digest)` });
      } else if (options.replace) work.push({ file: f, old: a, replacing: true });
      else conflicts.push(`${f.name}: on the draft with other bytes (${a.size} bytes${sha ? `, sha256 ${sha.slice(0, 16)}…` : ''}; this release: ${f.size} bytes, sha256 ${f.sha256.slice(0, 16)}…)`);
    }
  }
  const strays = existing.filter((a) => !seen.has(a.name));
  for (const a of strays) if (!options.replace && a.state === 'uploaded') conflicts.push(`${a.name}: on the draft but not a file of this release`);
  if (conflicts.length) {
    throw new StepError('RELEASE_ASSET_CONFLICT', `the draft release ${release.tag} holds ${conflicts.length} asset(s) that differ from this release: ${conflicts.map((c) => c.slice(0, c.indexOf(':'))).join(', ')}`, {
      details: conflicts,
      hint: 'nothing was changed; if this release is the right one, run again with --replace (the draft is not public yet)',
    });
  }
  for (const a of strays) {
    await deleteAsset(client, a);
    if (a.state === 'uploaded') result.deleted.push(a.name);
  }
  let done = 0;
  await eachLimited(work, options.concurrency ?? 3, async (w) => {
    if (w.old) await deleteAsset(client, w.old);
    client.onProgress({ action: 'uploading', name: w.file.name, message: `uploading ${w.file.name} (${w.file.size} bytes)` });
    await uploadOne(client, release, w.file);
    done += 1;
    (w.replacing ? result.replaced : result.uploaded).push(w.file.name);
    client.onProgress({ action: w.replacing ? 'replaced' : 'uploaded', name: w.file.name, message: `${w.replacing ? 'replaced' : 'uploaded'} ${done}/${work.length}: ${w.file.name}` });
  });
  for (const list of Object.values(result)) (list as string[]).sort();
  return result;
}

// --- 3. downloading the draft -------------------------------------------------------------------

export interface DownloadedDraft {
  dir: string;
  assets: Array<{ name: string; size: number; sha256: string }>;
}

/**
 * Downloads every asset of a release (a draft too: through the API, with the token) into `dir`,
 * which must be empty or absent, each streamed to disk and checked against the size and digest
 * GitHub records: the files exactly as a consumer with access would get them.
 */
export async function downloadDraft(client: GithubReleaseClient, releaseId: number, dir: string): Promise<DownloadedDraft> {
  const present = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  if (present.length) throw new StepError('RELEASE_DOWNLOAD_FOLDER_NOT_EMPTY', `${dir} is not empty; the draft is downloaded into an empty folder only`, { hint: `remove ${dir} and run again` });
  await mkdir(dir, { recursive: true });
  const out: DownloadedDraft['assets'] = [];
  for (const asset of await listAssets(client, releaseId)) {
    const problem = assetNameProblem(asset.name);
    if (problem) throw new StepError('RELEASE_ASSET_NAME', `the release asset ${JSON.stringify(asset.name)} cannot be a file in a folder: it ${problem}`, { hint: 'delete that asset from the draft (mcp-release release-draft --replace puts back exactly the release files)' });
    if (asset.state !== 'uploaded') throw new StepError('RELEASE_ASSET_INCOMPLETE', `the upload of ${asset.name} never finished (state ${asset.state})`, { hint: 'run release-draft again: it removes and uploads the asset again' });
    const file = path.join(dir, asset.name);
    try {
      const got = await withRetry(client, `download ${asset.name}`, () => streamAsset(client, asset, () => createWriteStream(file)), asset.name);
      out.push({ name: asset.name, size: got.size, sha256: got.sha256 });
    } catch (err) {
      await rm(file, { force: true });
      if (err instanceof TransientError) throw new StepError('RELEASE_DOWNLOAD_DAMAGED', `could not download ${asset.name} intact: ${err.message}`, { hint: 'check the network and run again' });
      throw githubApiError(`download the release asset ${asset.name}`, err, client);
    }
    client.onProgress({ action: 'downloaded', name: asset.name, message: `downloaded ${out.length}: ${asset.name}` });
  }
  return { dir, assets: out };
}

// --- 4. publishing ------------------------------------------------------------------------------

/** The commit a tag on GitHub points to (annotated tags peeled), or undefined when the tag does not exist. */
export async function tagCommit(client: GithubReleaseClient, tag: string): Promise<{ sha: string; type: string } | undefined> {
  const { octokit, owner, repo } = client;
  let object: { sha: string; type: string };
  try {
    object = (await withRetry(client, `look up the tag ${tag}`, () => octokit.rest.git.getRef({ owner, repo, ref: `tags/${tag}` }))).data.object;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw githubApiError(`look up the tag ${tag} on ${client.repository}`, err, client);
  }
  for (let depth = 0; object.type === 'tag'; depth += 1) {
    if (depth >= 8) throw new StepError('RELEASE_TAG_UNRESOLVED', `the tag ${tag} is a chain of more than 8 tag objects`, { hint: `point ${tag} at the release commit` });
    const sha = object.sha;
    try {
      object = (await withRetry(client, `read the tag object ${sha}`, () => octokit.rest.git.getTag({ owner, repo, tag_sha: sha }))).data.object;
    } catch (err) {
      throw githubApiError(`read the tag object ${sha} of ${tag}`, err, client);
    }
  }
  return { sha: object.sha, type: object.type };
}

export interface UndraftInput {
  tag: string;
  commit: string;
  prerelease: boolean;
  /** The release's files: the draft must hold exactly these before it is published. */
  expected: ExpectedAsset[];
  /** The draft that was verified; publishing a different one is refused. */
  releaseId?: number;
}

export interface UndraftResult {
  state: 'published' | 'already-published';
  release: GithubRelease;
}

/**
 * Publishes the draft of `tag`. First the tag must exist on GitHub and point (peeled) at the
 * planned commit, and the draft must hold exactly the release files: with immutable releases
 * nothing can be added or changed afterwards. Prereleases are published without becoming the
 * latest release; others let GitHub choose by date and version (`legacy`), so a patch of an older
 * line does not take "latest" from a newer one.
 */
export async function undraft(client: GithubReleaseClient, input: UndraftInput): Promise<UndraftResult> {
  const { octokit, owner, repo } = client;
  const found = await findReleases(client, input.tag);
  if (found.published) {
    const diffs = await compareAssets(client, await listAssets(client, found.published.id), input.expected);
    if (diffs.length) throw publishedDiffers(client, found.published, diffs);
    return { state: 'already-published', release: found.published };
  }
  if (found.drafts.length > 1) throw ambiguous(client, input.tag, found.drafts);
  const draft = found.drafts[0];
  if (!draft) {
    throw new StepError('RELEASE_DRAFT_MISSING', `there is no draft release of ${input.tag} on ${client.repository} to publish`, { hint: 'run release-draft (and verify-draft) first' });
  }
  if (input.releaseId !== undefined && draft.id !== input.releaseId) {
    throw new StepError('RELEASE_DRAFT_CHANGED', `the draft of ${input.tag} is release ${draft.id}, not release ${input.releaseId} that was verified`, { hint: 'run verify-draft again on the current draft, then undraft' });
  }
  const tagged = await tagCommit(client, input.tag);
  if (!tagged) {
    throw new StepError('RELEASE_TAG_MISSING', `the tag ${input.tag} does not exist on ${client.repository}; the draft was not published`, {
      hint: `push the tag at the planned commit first (git tag ${input.tag} ${input.commit.slice(0, 12)} && git push origin ${input.tag}); GitHub would otherwise make it at whatever the target branch is then`,
    });
  }
  if (tagged.type !== 'commit' || tagged.sha !== input.commit) {
    throw new StepError('RELEASE_TAG_MISMATCH', `the tag ${input.tag} on ${client.repository} points to ${tagged.type} ${tagged.sha}, not to the planned commit ${input.commit}; the draft was not published`, {
      hint: 'the tag was moved or made at another commit; fix the tag (or plan the release again at the tagged commit), then run again',
    });
  }
  const diffs = await compareAssets(client, await listAssets(client, draft.id), input.expected);
  if (diffs.length) {
    throw new StepError('RELEASE_DRAFT_INCOMPLETE', `the draft of ${input.tag} does not hold exactly the release files (${diffs.length} difference(s)); it was not published`, {
      details: diffs.slice(0, 20),
      hint: 'run release-draft (with --replace if assets differ) and verify-draft again, then undraft',
    });
  }
  try {
    const res = await withRetry(client, `publish ${input.tag}`, () =>
      octokit.rest.repos.updateRelease({ owner, repo, release_id: draft.id, draft: false, prerelease: input.prerelease, make_latest: input.prerelease ? 'false' : 'legacy' }),
    );
    const release = toRelease(res.data as ApiRelease);
    if (release.draft) throw new StepError('RELEASE_STILL_DRAFT', `GitHub answered, but ${input.tag} is still a draft`, { hint: 'run undraft again' });
    return { state: 'published', release };
  } catch (err) {
    throw githubApiError(`publish the draft release ${draft.id} of ${input.tag}`, err, client);
  }
}

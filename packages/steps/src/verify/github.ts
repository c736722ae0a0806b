import { hashingPassThrough } from '@mcp-release/manifest';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Octokit } from '@octokit/rest';
import type { StepError } from '../errors.js';
import { VERIFY_CODES, verifyError } from './codes.js';

export interface DownloadReleaseOptions {
  /** `owner/name`. */
  repository: string;
  tag: string;
  /** A token for private repositories or drafts; public releases need none. */
  token?: string;
  /** The REST API base URL; default https://api.github.com (GITHUB_API_URL on GitHub Enterprise). */
  baseUrl?: string;
  /** Where the assets go (created when missing). */
  dir: string;
}

export interface DownloadedRelease {
  dir: string;
  /** The release's assets, by name, as downloaded. */
  assets: Array<{ name: string; size: number; sha256: string }>;
}

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export function splitRepository(repository: string): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9._-]{1,100})$/.exec(repository);
  if (!m || m[2] === '.' || m[2] === '..') {
    throw verifyError(VERIFY_CODES.options, `${JSON.stringify(repository)} is not a GitHub repository (owner/name)`, 'give the repository as owner/name, e.g. mcp-release/vmaf-mcp');
  }
  return { owner: m[1] as string, repo: m[2] as string };
}

/** A failed API call as a "could not check" error that names what was asked and why it failed. */
function apiError(what: string, err: unknown, hint: string): StepError {
  const status = (err as { status?: number }).status;
  return verifyError(VERIFY_CODES.download, `could not ${what}: ${status ? `HTTP ${status} ` : ''}${(err as Error).message}`, hint, { cause: err });
}

/**
 * Downloads every asset of a GitHub release through the REST API into a folder, streaming each one
 * to disk (never whole in memory) and comparing it with the size and digest GitHub recorded.
 */
export async function downloadRelease(options: DownloadReleaseOptions): Promise<DownloadedRelease> {
  const { owner, repo } = splitRepository(options.repository);
  const octokit = new Octokit({ log: quiet, ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}), ...(options.token ? { auth: options.token } : {}) });
  let releaseId: number;
  try {
    releaseId = (await octokit.rest.repos.getReleaseByTag({ owner, repo, tag: options.tag })).data.id;
  } catch (err) {
    const status = (err as { status?: number }).status;
    throw apiError(
      `find the release ${options.tag} of ${options.repository}`,
      err,
      status === 404 ? `check the tag and the repository; a draft or a private repository needs a token (GITHUB_TOKEN)` : status === 401 || status === 403 ? 'check the token (GITHUB_TOKEN) and its access to the repository' : 'check the network and the GitHub API URL, then run again',
    );
  }
  let assets: Array<{ id: number; name: string; size: number; digest?: string | null }>;
  try {
    assets = await octokit.paginate(octokit.rest.repos.listReleaseAssets, { owner, repo, release_id: releaseId, per_page: 100 });
  } catch (err) {
    throw apiError(`list the assets of ${options.repository} ${options.tag}`, err, 'check the network and the token, then run again');
  }
  await mkdir(options.dir, { recursive: true });
  const out: DownloadedRelease['assets'] = [];
  for (const asset of assets) {
    if (!/^[^/\\]+$/.test(asset.name) || asset.name.startsWith('.')) {
      throw verifyError(VERIFY_CODES.download, `the release asset ${JSON.stringify(asset.name)} has a name that cannot be a file in the release folder`, 'release assets are plain file names; this release was not made by the release workflow');
    }
    const file = path.join(options.dir, asset.name);
    const meter = hashingPassThrough();
    try {
      const res = await octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
        owner,
        repo,
        asset_id: asset.id,
        headers: { accept: 'application/octet-stream' },
        request: { parseSuccessResponseBody: false },
      });
      const body = res.data as unknown as WebReadableStream<Uint8Array> | null;
      if (!body) throw new Error('the answer has no body');
      await pipeline(Readable.fromWeb(body), meter.stream, createWriteStream(file));
    } catch (err) {
      await rm(file, { force: true });
      throw apiError(`download the release asset ${asset.name}`, err, 'check the network, then run again');
    }
    const { sha256, size } = meter.result();
    if (size !== asset.size || (asset.digest && asset.digest !== `sha256:${sha256}`)) {
      throw verifyError(VERIFY_CODES.download, `the download of ${asset.name} differs from what GitHub recorded (${size} bytes, sha256:${sha256}; GitHub: ${asset.size} bytes${asset.digest ? `, ${asset.digest}` : ''})`, 'the transfer was damaged; run again');
    }
    out.push({ name: asset.name, size, sha256 });
  }
  return { dir: options.dir, assets: out };
}

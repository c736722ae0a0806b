import type { StepError } from '../errors.js';
import { createGithubReleaseClient } from '../publish/github/client.js';
import { downloadDraft, findReleases } from '../publish/github/release.js';
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
 * Downloads every asset of a GitHub release through the REST API into a folder, with the same
 * client the release itself uses: each asset streamed to disk (never whole in memory), checked
 * against the size and digest GitHub recorded, a stalled transfer aborted and retried. Any
 * failure is a "could not check" error.
 */
export async function downloadRelease(options: DownloadReleaseOptions): Promise<DownloadedRelease> {
  splitRepository(options.repository);
  const client = createGithubReleaseClient({ repository: options.repository, token: options.token ?? '', ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}) });
  let found: Awaited<ReturnType<typeof findReleases>>;
  try {
    found = await findReleases(client, options.tag);
  } catch (err) {
    throw apiError(`find the release ${options.tag} of ${options.repository}`, err, 'check the tag, the repository, the network and the token (GITHUB_TOKEN), then run again');
  }
  const release = found.published ?? found.drafts[0];
  if (!release) {
    throw verifyError(VERIFY_CODES.download, `there is no release ${options.tag} on ${options.repository}`, 'check the tag and the repository; a draft or a private repository needs a token (GITHUB_TOKEN)');
  }
  try {
    const downloaded = await downloadDraft(client, release.id, options.dir);
    return { dir: options.dir, assets: downloaded.assets };
  } catch (err) {
    throw apiError(`download the release ${options.tag}`, err, (err as StepError).hint ?? 'check the network, then run again');
  }
}

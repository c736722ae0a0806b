import { readFile } from 'node:fs/promises';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { DEFAULT_MIRROR_URL, getTrustedRoot } from '@sigstore/tuf';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import type { StepError } from '../errors.js';
import { VERIFY_CODES, verifyError } from './codes.js';

export interface LoadTrustedRootOptions {
  /** A trusted_root.json file (--trusted-root); wins over everything else. */
  file?: string;
  /** MCP_RELEASE_TRUSTED_ROOT (a file), then MCP_RELEASE_TUF_MIRROR / MCP_RELEASE_TUF_ROOT / MCP_RELEASE_TUF_CACHE for TUF. */
  env: NodeJS.ProcessEnv;
  /** Never go to the network: without a file the root cannot be had. */
  offline: boolean;
  /** Where the TUF client keeps its metadata; default: MCP_RELEASE_TUF_CACHE, else the client's own cache folder. */
  tufCachePath?: string;
}

export interface LoadedTrustedRoot {
  /** The trusted_root.json object, for verifyBundle and verifyRelease. */
  trustedRoot: Record<string, unknown>;
  source: 'file' | 'env' | 'tuf';
  /** The file path, or the TUF mirror URL. */
  location: string;
}

export const TRUSTED_ROOT_ENV = 'MCP_RELEASE_TRUSTED_ROOT';

/**
 * The Sigstore trust root to verify against: --trusted-root, else MCP_RELEASE_TRUSTED_ROOT, else
 * the public-good instance's root over TUF (unless offline). Every failure to obtain a usable root
 * is a CANNOT_VERIFY_ error: nothing was checked.
 */
export async function loadTrustedRoot(options: LoadTrustedRootOptions): Promise<LoadedTrustedRoot> {
  const fromEnv = options.env[TRUSTED_ROOT_ENV];
  const file = options.file || fromEnv;
  if (file) {
    const what = options.file ? 'the trusted root (--trusted-root)' : `the trusted root (${TRUSTED_ROOT_ENV})`;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw verifyError(VERIFY_CODES.trustedRootUnavailable, `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`, options.file ? 'check the --trusted-root path' : `point ${TRUSTED_ROOT_ENV} at a trusted_root.json, or unset it to use the public Sigstore root`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw verifyError(VERIFY_CODES.trustedRootInvalid, `${what} ${file} is not JSON: ${(err as Error).message}`, 'give a trusted_root.json (application/vnd.dev.sigstore.trustedroot+json)', { cause: err });
    }
    const trustedRoot = assertTrustedRoot(json, `${what} ${file}`);
    return { trustedRoot, source: options.file ? 'file' : 'env', location: file };
  }
  if (options.offline) {
    throw verifyError(VERIFY_CODES.trustedRootUnavailable, 'no trusted root to verify against: offline, and neither --trusted-root nor MCP_RELEASE_TRUSTED_ROOT is given', 'pass --trusted-root trusted_root.json (e.g. from `sigstore trusted-root` or the lab), or drop --offline to fetch the public Sigstore root over TUF');
  }
  const mirrorURL = options.env.MCP_RELEASE_TUF_MIRROR || DEFAULT_MIRROR_URL;
  const rootPath = options.env.MCP_RELEASE_TUF_ROOT || undefined;
  const cachePath = options.tufCachePath || options.env.MCP_RELEASE_TUF_CACHE || undefined;
  let root: TrustedRoot;
  try {
    root = await getTrustedRoot({ mirrorURL, ...(rootPath ? { rootPath } : {}), ...(cachePath ? { cachePath } : {}), retry: 2, timeout: 30_000 });
  } catch (err) {
    throw verifyError(VERIFY_CODES.trustedRootUnavailable, `could not get the Sigstore trusted root over TUF from ${mirrorURL}: ${(err as Error).message}`, mirrorURL === DEFAULT_MIRROR_URL ? 'check the network (or a proxy); or pass --trusted-root with a trusted_root.json you trust' : 'check MCP_RELEASE_TUF_MIRROR and MCP_RELEASE_TUF_ROOT (the root.json the mirror starts from)', { cause: err });
  }
  const trustedRoot = assertTrustedRoot(TrustedRoot.toJSON(root), `the trusted root from ${mirrorURL}`);
  return { trustedRoot, source: 'tuf', location: mirrorURL };
}

const material = new WeakMap<object, TrustMaterial>();

function assertTrustedRoot(json: unknown, what: string): Record<string, unknown> {
  trustMaterialOf(json as object, what);
  return json as Record<string, unknown>;
}

/** The verifier's view of a trusted_root.json object; an unusable root is a CANNOT_VERIFY_ error. */
export function trustMaterialOf(trustedRoot: object, what = 'the trusted root'): TrustMaterial {
  const cached = trustedRoot && typeof trustedRoot === 'object' ? material.get(trustedRoot) : undefined;
  if (cached) return cached;
  const invalid = (why: string, cause?: unknown): StepError =>
    verifyError(VERIFY_CODES.trustedRootInvalid, `${what} is not a usable Sigstore trusted root: ${why}`, 'give a trusted_root.json (application/vnd.dev.sigstore.trustedroot+json) with Fulcio CAs and Rekor logs', cause === undefined ? {} : { cause });
  if (!trustedRoot || typeof trustedRoot !== 'object' || Array.isArray(trustedRoot)) throw invalid('not a JSON object');
  const mediaType = (trustedRoot as { mediaType?: unknown }).mediaType;
  if (typeof mediaType !== 'string' || !mediaType.startsWith('application/vnd.dev.sigstore.trustedroot')) throw invalid(`media type ${JSON.stringify(mediaType)}`);
  let trust: TrustMaterial;
  try {
    trust = toTrustMaterial(TrustedRoot.fromJSON(trustedRoot));
  } catch (err) {
    throw invalid((err as Error).message, err);
  }
  if (!trust.certificateAuthorities.length) throw invalid('it lists no certificate authority');
  if (!trust.tlogs.length) throw invalid('it lists no transparency log');
  material.set(trustedRoot, trust);
  return trust;
}

import { createHash } from 'node:crypto';
import { fileChunks } from '@mcp-release/manifest';
import { VERIFY_CODES, verifyError } from './codes.js';

export type HashName = 'sha256' | 'sha384' | 'sha512';

/** Hex digests of one file, by algorithm, with its size. */
export interface FileHashes {
  size: number;
  sha256?: string;
  sha384?: string;
  sha512?: string;
}

/**
 * Hashes a file by streaming it once through every requested algorithm: the file is never held in
 * memory whole, whatever its size.
 */
export async function hashFileStreaming(file: string, algorithms: readonly HashName[] = ['sha256', 'sha512']): Promise<FileHashes> {
  const hashes = [...new Set(algorithms)].map((name) => ({ name, hash: createHash(name) }));
  let size = 0;
  try {
    for await (const chunk of fileChunks(file)) {
      for (const h of hashes) h.hash.update(chunk);
      size += chunk.length;
    }
  } catch (err) {
    throw unreadable(file, 'artifact', err);
  }
  const out: FileHashes = { size };
  for (const h of hashes) out[h.name] = h.hash.digest('hex');
  return out;
}

export function unreadable(file: string, what: string, err: unknown) {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
  return verifyError(VERIFY_CODES.inputUnreadable, `cannot read the ${what} ${file}: ${why}`, code === 'ENOENT' ? `check the path of the ${what}` : `make ${file} a readable file and run again`, { cause: err });
}

const HEX64 = /^[0-9a-f]{64}$/;

/** `sha256:<hex>` (or bare hex) to lower-case hex; anything else is a usage error. */
export function parseSha256(value: string): string {
  const hex = value.trim().toLowerCase().replace(/^sha256:/, '');
  if (!HEX64.test(hex)) {
    throw verifyError(VERIFY_CODES.options, `${JSON.stringify(value)} is not a sha256 digest`, 'give the artifact as a file path, or as sha256:<64 hex digits>');
  }
  return hex;
}

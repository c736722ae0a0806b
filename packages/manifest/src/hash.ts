import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { ManifestError } from './errors.js';

export interface FileDigests {
  size: number;
  sha256: string;
  sha512: string;
}

export interface HashOptions {
  /** Called as bytes are read; used for progress lines on big files. */
  onProgress?: (bytesRead: number) => void;
  /** Stream factory (a test can inject a fault here). */
  openRead?: (file: string) => NodeJS.ReadableStream;
}

/** The size of the one buffer fileChunks reads a file through. */
export const READ_CHUNK_BYTES = 1 << 20;

/**
 * The bytes of a file in order, read through one reused buffer. A chunk is valid only until the
 * next one is asked for: hash it (or copy it) at once. A read stream allocates a new buffer for
 * every chunk, and the garbage collector frees those only after tens of megabytes have piled up;
 * here memory stays flat whatever the size of the file.
 */
export async function* fileChunks(file: string, chunkBytes = READ_CHUNK_BYTES): AsyncGenerator<Buffer, void, undefined> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(chunkBytes);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, chunkBytes, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** Hashes a file by streaming it once, computing sha256 and sha512 in the same pass. */
export async function hashFile(file: string, options: HashOptions = {}): Promise<FileDigests> {
  const h256 = createHash('sha256');
  const h512 = createHash('sha512');
  let size = 0;
  const chunks = options.openRead ? (options.openRead(file) as AsyncIterable<Buffer>) : fileChunks(file);
  try {
    for await (const chunk of chunks) {
      h256.update(chunk);
      h512.update(chunk);
      size += chunk.length;
      options.onProgress?.(size);
    }
  } catch (err) {
    throw readError(file, err);
  }
  return { size, sha256: h256.digest('hex'), sha512: h512.digest('hex') };
}

export function readError(file: string, err: unknown): ManifestError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new ManifestError('ARTIFACT_UNREADABLE', `cannot read ${file}: permission denied`, {
      hint: `make it readable by this user (chmod a+r ${JSON.stringify(file)}) and run again`,
      cause: err,
    });
  }
  if (code === 'ENOENT') {
    return new ManifestError('ARTIFACT_MISSING', `${file} does not exist`, {
      hint: 'rebuild it (mcp-release build) or remove its entry from the manifest',
      cause: err,
    });
  }
  if (code === 'EISDIR') {
    return new ManifestError('ARTIFACT_NOT_A_FILE', `${file} is a directory, not a file`, {
      hint: 'release files must be regular files; archive the folder or remove it from the release folder',
      cause: err,
    });
  }
  return new ManifestError('ARTIFACT_UNREADABLE', `cannot read ${file}: ${(err as Error).message}`, {
    hint: 'check the file and the disk, then run again',
    cause: err,
  });
}

/** The npm registry's integrity string for a tarball: `sha512-<base64>`. */
export function npmIntegrity(sha512Hex: string): string {
  return `sha512-${Buffer.from(sha512Hex, 'hex').toString('base64')}`;
}

/**
 * A pass-through stream that hashes (sha256) and counts what flows through it, for pipelines
 * that write a download or an upload to disk.
 */
export function hashingPassThrough(): { stream: Transform; result(): { sha256: string; size: number } } {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  let done: { sha256: string; size: number } | undefined;
  return { stream, result: () => (done ??= { sha256: hash.digest('hex'), size }) };
}

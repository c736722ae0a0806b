import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { ManifestError } from './errors.js';

/**
 * Checks that a release path is a plain relative path inside the release folder: no absolute
 * paths, no `..`, no NUL, no line breaks or backslashes (which would corrupt SHA256SUMS), no
 * ill-formed Unicode, and already in normal form.
 */
export function assertSafeRelativePath(name: string, what = 'artifact path'): void {
  const fail = (why: string): never => {
    throw new ManifestError('UNSAFE_PATH', `${what} ${JSON.stringify(name)} ${why}`, {
      hint: 'release files must be named by a relative path inside the release folder, e.g. "vmaf-mcp-1.2.3.tgz"; rename the file or fix the manifest entry',
    });
  };
  if (typeof name !== 'string' || name.length === 0) fail('is empty');
  if (!name.isWellFormed()) fail('is not valid UTF-8 text');
  if (name.includes('\0')) fail('contains a NUL byte');
  if (/[\r\n]/.test(name)) fail('contains a line break');
  if (name.includes('\\')) fail('contains a backslash');
  if (path.posix.isAbsolute(name) || path.win32.isAbsolute(name)) fail('is absolute');
  const parts = name.split('/');
  if (parts.includes('..')) fail('escapes the release folder through ".."');
  if (parts.some((p) => p === '' || p === '.')) fail('is not in normal form (empty or "." segment)');
}

/**
 * Resolves `name` inside `root` and proves, on disk, that it stays there: every symlink on the
 * way is resolved and the real path must still be under the real root.
 */
export async function resolveInside(root: string, name: string, what = 'artifact path'): Promise<string> {
  assertSafeRelativePath(name, what);
  const realRoot = await realpath(root);
  const joined = path.join(realRoot, name);
  let real: string;
  try {
    real = await realpath(joined);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // A dangling symlink is still an escape attempt worth naming.
      const st = await lstat(joined).catch(() => undefined);
      if (st?.isSymbolicLink()) {
        throw new ManifestError('UNSAFE_PATH', `${what} ${JSON.stringify(name)} is a symlink to a missing target`, {
          hint: 'release files must be regular files inside the release folder; replace the link with the file itself',
        });
      }
      throw new ManifestError('ARTIFACT_MISSING', `${what} ${JSON.stringify(name)} does not exist in ${root}`, {
        hint: 'rebuild it (mcp-release build) or remove its entry from the manifest',
        cause: err,
      });
    }
    throw err;
  }
  const rel = path.relative(realRoot, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new ManifestError('UNSAFE_PATH', `${what} ${JSON.stringify(name)} resolves to ${real}, outside the release folder ${realRoot}`, {
      hint: 'a symlink points out of the release folder; copy the real file into the folder instead of linking to it',
    });
  }
  return real;
}

import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { VmafMcpError } from './errors.js';

export const ALLOW_ENV = 'VMAF_MCP_ALLOW';

/** The folders the server may read from. Every path is checked by its real location on disk. */
export class Allowlist {
  private constructor(readonly roots: string[]) {}

  /** Roots: the folders the server was started with, plus VMAF_MCP_ALLOW (path-list separated). */
  static async create(folders: string[], env: NodeJS.ProcessEnv): Promise<Allowlist> {
    const extra = (env[ALLOW_ENV] ?? '').split(path.delimiter).filter(Boolean);
    const roots: string[] = [];
    for (const f of [...folders, ...extra]) {
      const real = await realpath(f).catch(() => undefined);
      if (real) roots.push(real);
    }
    return new Allowlist([...new Set(roots)]);
  }

  /** Resolves `file` (relative to the first root) and refuses anything outside every root. */
  async check(file: string, what: string): Promise<string> {
    const resolved = path.resolve(this.roots[0] ?? process.cwd(), file);
    let real: string;
    try {
      real = await realpath(resolved);
    } catch {
      throw new VmafMcpError('FILE_NOT_FOUND', `${what} ${file} does not exist`, { hint: 'pass an existing file; relative paths are resolved against the first allowed folder' });
    }
    const inside = this.roots.some((root) => {
      const rel = path.relative(root, real);
      return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
    });
    if (!inside) {
      const via = real !== resolved ? ` (it resolves to ${real})` : '';
      throw new VmafMcpError('PATH_NOT_ALLOWED', `${what} ${file} is outside the folders this server may read${via}`, {
        hint: `start the server with that folder as an argument, or add it to ${ALLOW_ENV} (separated by "${path.delimiter}"); allowed now: ${this.roots.join(path.delimiter) || '(none)'}`,
      });
    }
    return real;
  }
}

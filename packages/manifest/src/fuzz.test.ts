/**
 * Property tests of the manifest reader: whatever the value, text or bytes, it either gives a
 * manifest that survives its own write and read unchanged, or throws a coded ManifestError. Never a
 * TypeError, a RangeError or a hang; never an unsafe artifact path let through.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.js';
import { hostileValue, mutatedBytes, mutatedJson, mutatedText, NASTY_STRINGS, resultOrCoded, settledOrCoded } from '../../../test/hostile/fuzz.js';
import { ManifestError } from './errors.js';
import { newManifest, parseManifest, readManifest, serializeManifest } from './manifest.js';
import { assertSafeRelativePath } from './paths.js';
import type { Manifest } from './types.js';

function valid(): Manifest {
  const m = newManifest({
    commit: 'a'.repeat(40),
    dirty: false,
    timestamp: '2026-01-02T03:04:05Z',
    epoch: 1767323045,
    tag: 'v1.2.3',
    packages: [{ name: 'vmaf-mcp', version: '1.2.3', path: 'packages/vmaf-mcp', distTag: 'latest' }],
    branch: { name: 'main', remote: 'origin', head: 'a'.repeat(40) },
  });
  m.artifacts.push({ path: 'a.so', kind: 'native-library', platform: 'linux-x64', size: 4, sha256: '3'.repeat(64), sha512: '4'.repeat(128), producedBy: 'build-native', meta: { needed: ['libc.so.6'] } });
  m.artifacts.push({ path: 'native/b.tgz', kind: 'npm-tarball', platform: 'any', size: 3, sha256: '1'.repeat(64), sha512: '2'.repeat(128), producedBy: 'build-npm' });
  m.steps['build-npm'] = { state: 'succeeded', fingerprint: '5'.repeat(64), outputs: ['native/b.tgz'] };
  m.steps.sign = { state: 'failed', error: { code: 'X', message: 'y', hint: 'z' } };
  return m;
}

const MANIFEST_CODE = /^(MANIFEST_[A-Z_]+|UNSAFE_PATH)$/;

/** A parsed manifest keeps every guarantee the reader gives: safe, unique paths, and a stable round trip. */
function checkAccepted(m: Manifest): void {
  const paths = m.artifacts.map((a) => a.path);
  expect(new Set(paths).size).toBe(paths.length);
  for (const p of paths) expect(() => assertSafeRelativePath(p)).not.toThrow();
  const text = serializeManifest(m);
  expect(serializeManifest(parseManifest(JSON.parse(text), 'round trip'))).toBe(text);
}

describe('manifest reader (property tests)', () => {
  it('any JSON value: a manifest or a coded error', () => {
    fc.assert(
      fc.property(fc.oneof(hostileValue, fc.jsonValue()), (value) => {
        const m = resultOrCoded(() => parseManifest(value, 'fuzz'), MANIFEST_CODE);
        if (m) checkAccepted(m);
      }),
      { numRuns: 500 },
    );
  });

  it('a valid manifest with values replaced, keys deleted and entries duplicated', () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutatedJson(valid()), (value) => {
        const m = resultOrCoded(() => parseManifest(structuredClone(value), 'fuzz'), MANIFEST_CODE);
        if (m) {
          accepted += 1;
          checkAccepted(m);
        }
      }),
      { numRuns: 1000 },
    );
    // the mutations reach past the first checks: some damaged manifests are still manifests (meta, outputs…)
    expect(accepted).toBeGreaterThan(0);
  });

  it('artifact paths from a hostile alphabet are accepted only when they are plain relative paths', () => {
    const unit = fc.constantFrom('a', 'b', '.', '/', '\\', ' ', '\0', '\n', ':', '\ud800', '\u00e9', '~', 'C');
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit, maxLength: 12 }), fc.constantFrom(...NASTY_STRINGS), fc.string({ unit: 'binary', maxLength: 8 })), (name) => {
        const m = valid();
        (m.artifacts[0] as { path: string }).path = name;
        let ok = true;
        try {
          parseManifest(m, 'fuzz');
        } catch (err) {
          expect(err).toBeInstanceOf(ManifestError);
          ok = false;
        }
        if (ok) {
          expect(name.isWellFormed() && !name.includes('\0') && !name.startsWith('/') && !name.includes('\\')).toBe(true);
          expect(name.split('/').every((s) => s !== '' && s !== '.' && s !== '..')).toBe(true);
          expect(path.posix.normalize(name)).toBe(name);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('manifest files with damaged text or bytes: a manifest or a coded error, never a crash', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'manifest.json');
    const text = serializeManifest(valid());
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutatedText(text).map((t) => Buffer.from(t)), mutatedBytes(Buffer.from(text)), fc.uint8Array({ maxLength: 64 })), async (bytes) => {
        await writeFile(file, bytes);
        const m = await settledOrCoded(() => readManifest(file), MANIFEST_CODE);
        if (m) checkAccepted(m);
      }),
      { numRuns: 300 },
    );
  });
});

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './tmp.js';

/** Builds the native fixture (real meson, ninja, gcc) into `dir`; returns its CLI, runnable in place. */
export function buildFixtureCli(dir: string): string {
  const build = path.join(dir, 'native-build');
  execFileSync('meson', ['setup', build, path.join(REPO_ROOT, 'test/fixtures/native/libvmaf'), '--buildtype', 'release', '-Denable_float=true', '-Denable_tests=false'], { stdio: 'ignore' });
  execFileSync('meson', ['compile', '-C', build], { stdio: 'ignore' });
  return path.join(build, 'minivmaf');
}

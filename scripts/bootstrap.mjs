#!/usr/bin/env node
// Installs what `npm run rehearse` and `npm test` need, when it is missing:
//   - node_modules, with `npm ci`, when absent or out of date with package-lock.json;
//   - meson, ninja, nasm and pkg-config (native builds), openssl and gh (the lab's consumer checks),
//     with apt-get when running as root on Debian/Ubuntu
//     (MCP_RELEASE_NO_APT=1 turns that off: it then only says what to install).
// When it cannot install something it says what to run, and exits 1.
// Uses only Node built-ins: it runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const say = (m) => process.stderr.write(`bootstrap: ${m}\n`);
const fail = (m, fix) => {
  process.stderr.write(`bootstrap: ${m}\n  fix: ${fix}\n`);
  process.exit(1);
};

// 1. Node
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) fail(`Node ${process.versions.node} is too old`, 'install Node 20.19 or newer (Node 24 is what GitHub runs actions on)');

// 2. node_modules: every package the lockfile names must be installed at its locked version
//    (optional ones, such as other platforms' binaries, may be absent). No marker file: this also
//    accepts an install made by `npm ci` or `npm install` directly.
function stalePackages() {
  const lockfile = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
  const stale = [];
  for (const [key, meta] of Object.entries(lockfile.packages ?? {})) {
    if (!key.includes('node_modules/')) continue;
    const file = path.join(root, key, 'package.json');
    if (!existsSync(file)) {
      if (!meta.optional && !meta.devOptional) stale.push(key);
      continue;
    }
    if (meta.link) continue;
    const { version } = JSON.parse(readFileSync(file, 'utf8'));
    if (meta.version && version !== meta.version) stale.push(key);
  }
  return stale;
}
const stale = existsSync(path.join(root, 'node_modules')) ? stalePackages() : ['node_modules'];
if (stale.length) {
  say(stale[0] === 'node_modules' ? 'node_modules is missing; running npm ci' : `${stale.length} package(s) differ from package-lock.json (${stale.slice(0, 3).join(', ')}…); running npm ci`);
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) fail('npm ci failed', 'check that the npm registry is reachable (npm ping) and run `npm ci` in the repository root');
}

// 3. Native build tools
if (!args.has('--no-native')) {
  const tools = { meson: 'meson', ninja: 'ninja-build', nasm: 'nasm', 'pkg-config': 'pkg-config', cc: 'gcc', readelf: 'binutils', openssl: 'openssl', gh: 'gh' };
  const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  const missing = Object.keys(tools).filter((t) => !has(t));
  if (missing.length) {
    const pkgs = [...new Set(missing.map((t) => tools[t]))];
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (isRoot && has('apt-get') && !process.env.MCP_RELEASE_NO_APT) {
      say(`installing ${pkgs.join(' ')} with apt-get`);
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const up = spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
      const inst = up.status === 0 ? spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env }) : up;
      if (inst.status !== 0) fail(`apt-get could not install ${pkgs.join(' ')}`, `install them yourself: apt-get install ${pkgs.join(' ')}`);
    } else {
      fail(
        `missing build tools: ${missing.join(', ')}`,
        `install them: sudo apt-get install ${pkgs.join(' ')} (Debian/Ubuntu), or brew install meson ninja nasm pkg-config openssl gh (macOS); then run again`,
      );
    }
  }
}

import { chmod, copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { execChecked, skip, tailLines, type Step } from '@mcp-release/pipeline';
import { StepError } from './errors.js';
import {
  configureExcerpt,
  deterministicTarGz,
  findMesonProject,
  introspect,
  linksTo,
  mesonOptionArgs,
  parseCompilers,
  pickTarget,
  readElf,
  releaseName,
  type MesonTarget,
} from './native.js';
import type { ReleaseContext, ReleaseOptions } from './options.js';
import { digestOf, identifySource } from './source.js';

const MODELS_ARCHIVE = 'models.tar.gz';

function sourceDir(ctx: ReleaseContext): string {
  return path.resolve(ctx.repoRoot, (ctx.options.native as NonNullable<ReleaseOptions['native']>).source);
}

/**
 * Flags that keep binaries byte-identical wherever the build folder is: source paths mapped to
 * `.` (they reach binaries through __FILE__ and asserts) and symbols stripped at link time (the
 * assembler records file symbols with no prefix map, and a strip after linking would leave the
 * build id computed over them).
 */
function reproducibleEnv(env: NodeJS.ProcessEnv, projectDir: string, buildDir: string): NodeJS.ProcessEnv {
  const rel = path.relative(buildDir, projectDir);
  const maps = [`-ffile-prefix-map=${projectDir}=.`, `-ffile-prefix-map=${rel}=.`, `-ffile-prefix-map=${buildDir}=.`].join(' ');
  const join = (a: string | undefined, b: string): string => (a ? `${a} ${b}` : b);
  return { ...env, CFLAGS: join(env.CFLAGS, maps), CXXFLAGS: join(env.CXXFLAGS, maps), LDFLAGS: join(env.LDFLAGS, '-s') };
}

function installedFile(target: MesonTarget, destdir: string): string {
  const installed = target.install_filename?.find((f): f is string => typeof f === 'string');
  if (!installed) throw new StepError('NATIVE_TARGET_NOT_INSTALLED', `meson reports no install location for ${target.name}`, { hint: 'give the target install: true in its meson.build' });
  return path.join(destdir, installed);
}

/**
 * Builds the native artifacts with meson and ninja, runs `meson test` as a gate, and stages the
 * shared library, the CLI and models.tar.gz as release files. The effective build options come
 * from `meson introspect`, so later steps know what was really compiled in.
 */
export const buildNativeStep: Step<ReleaseOptions> = {
  name: 'build-native',
  description: 'meson setup, compile and test; stage the library, the CLI and models.tar.gz',
  skip(ctx) {
    return ctx.options.native ? undefined : skip('no native build configured (set native.source in the policy or pass --native-source)');
  },
  async fingerprint(ctx) {
    const native = ctx.options.native as NonNullable<ReleaseOptions['native']>;
    await findMesonProject(sourceDir(ctx));
    const src = await identifySource(ctx.deps.exec, sourceDir(ctx));
    const tools = await Promise.all(
      [['meson', '--version'], ['cc', '--version']].map(async ([c, a]) => (await ctx.deps.exec(c as string, [a as string]).catch(() => undefined))?.stdout.split('\n')[0] ?? ''),
    );
    return digestOf({ step: 'build-native', source: src.fingerprint, native, platform: ctx.options.platform, tools, epoch: ctx.manifest.plan.epoch });
  },
  async run(ctx) {
    const native = ctx.options.native as NonNullable<ReleaseOptions['native']>;
    const { exec } = ctx.deps;
    const platform = ctx.options.platform;
    const source = sourceDir(ctx);
    const project = await findMesonProject(source);
    const modelsDir = path.resolve(source, native.models ?? 'model');
    const buildDir = path.join(ctx.workDir, `native-${platform}`);
    const destdir = path.join(ctx.workDir, `native-${platform}-install`);
    await rm(buildDir, { recursive: true, force: true });
    await rm(destdir, { recursive: true, force: true });
    await mkdir(ctx.workDir, { recursive: true });
    const env = reproducibleEnv(ctx.deps.env, project, buildDir);

    // 1. configure
    const optionArgs = mesonOptionArgs(native.options);
    ctx.log.info(`  meson setup ${path.relative(ctx.repoRoot, project) || project} ${optionArgs.join(' ')}`);
    const setup = await exec('meson', ['setup', buildDir, project, '--buildtype', 'release', ...optionArgs], { env });
    if (setup.exitCode !== 0) {
      throw new StepError('NATIVE_CONFIGURE_FAILED', `meson setup failed for ${project}`, {
        details: await configureExcerpt(buildDir, `${setup.stdout}\n${setup.stderr}`),
        hint: `fix the options above (native.options in the policy, or --meson-option); the full log is ${path.join(buildDir, 'meson-logs', 'meson-log.txt')}`,
      });
    }

    // 2. compile, with ninja's [n/m] counter as progress
    const onLine = (line: string): void => {
      const m = /^\[(\d+)\/(\d+)\]/.exec(line);
      if (m) ctx.progress(`compiling ${m[1]}/${m[2]}`);
    };
    const compile = await exec('meson', ['compile', '-C', buildDir], { env, onLine });
    if (compile.exitCode !== 0) {
      const errors = `${compile.stdout}\n${compile.stderr}`.split('\n').filter((l) => /error|FAILED/i.test(l));
      throw new StepError('NATIVE_COMPILE_FAILED', `compiling ${project} failed`, {
        details: (errors.length ? errors : tailLines(compile.stdout + compile.stderr, 15)).slice(0, 15),
        hint: 'fix the compiler errors above; to reproduce: meson compile -C ' + buildDir,
      });
    }

    // 3. the native test suite is a gate
    let testCount = 0;
    if (native.tests !== false) {
      const test = await exec('meson', ['test', '-C', buildDir, '--print-errorlogs', '--no-rebuild'], {
        env,
        onLine: (line) => {
          const m = /^\s*(\d+)\/(\d+)\s+(\S+)\s+(OK|FAIL|EXPECTEDFAIL|SKIP|TIMEOUT|ERROR)/.exec(line);
          if (m) {
            testCount = Number(m[2]);
            ctx.progress(`test ${m[1]}/${m[2]} ${m[3]} ${m[4]}`);
          }
        },
      });
      if (test.exitCode !== 0) {
        const out = `${test.stdout}\n${test.stderr}`;
        const failing = out.split('\n').filter((l) => /\s(FAIL|TIMEOUT|ERROR)\s/.test(l) || /^(Ok|Fail|Timeout|Expected Fail|Unexpected Pass):/.test(l.trim()));
        throw new StepError('NATIVE_TESTS_FAILED', `meson test failed in ${project}; no artifact was staged`, {
          details: (failing.length ? failing : tailLines(out, 15)).slice(0, 20),
          hint: `fix the failing tests; their logs are in ${path.join(buildDir, 'meson-logs', 'testlog.txt')}`,
        });
      }
    }

    // 4. what was really built, from meson itself
    const info = await introspect(exec, buildDir);
    const library = pickTarget(info.targets, 'shared library', native.library, 'library');
    const cli = pickTarget(info.targets, 'executable', native.cli, 'cli');
    await execChecked(exec, 'meson', ['install', '-C', buildDir, '--destdir', destdir, '--no-rebuild', '--quiet'], {
      env,
      code: 'NATIVE_INSTALL_FAILED',
      what: 'meson install failed',
      hint: 'check the install() rules of the meson project',
    });

    // 5. stage: the real library file (symlinks recorded, not copied), the CLI, the models
    const libFile = installedFile(library, destdir);
    const libName = releaseName(libFile, platform);
    await copyFile(libFile, path.join(ctx.releaseDir, libName));
    await chmod(path.join(ctx.releaseDir, libName), 0o755);
    const libElf = await readElf(exec, libFile);
    await ctx.addArtifact(libName, 'native-library', platform, {
      target: library.name,
      file: path.basename(libFile),
      links: await linksTo(libFile),
      ...(libElf?.soname ? { soname: libElf.soname } : {}),
      needed: libElf?.needed ?? [],
    });
    const cliFile = installedFile(cli, destdir);
    const cliName = releaseName(cliFile, platform);
    await copyFile(cliFile, path.join(ctx.releaseDir, cliName));
    await chmod(path.join(ctx.releaseDir, cliName), 0o755);
    const cliElf = await readElf(exec, cliFile);
    await ctx.addArtifact(cliName, 'native-cli', platform, { target: cli.name, file: path.basename(cliFile), needed: cliElf?.needed ?? [] });

    const modelEntries = await deterministicTarGz(modelsDir, path.join(ctx.releaseDir, MODELS_ARCHIVE), {
      prefix: 'model',
      epoch: ctx.manifest.plan.epoch,
      staging: path.join(ctx.workDir, 'models-staging'),
    }).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StepError('NATIVE_MODELS_MISSING', `the models folder ${modelsDir} does not exist`, {
          cause: err,
          hint: 'set native.models in the release policy to the models folder, relative to the source tree (vmaf: model)',
        });
      }
      throw err;
    });
    await ctx.addArtifact(MODELS_ARCHIVE, 'models-archive', 'any', { files: modelEntries });

    // 6. record the effective build
    const src = await identifySource(exec, source);
    const options: Record<string, unknown> = {};
    for (const o of info.buildoptions.filter((b) => b.section === 'user').sort((a, b) => (a.name < b.name ? -1 : 1))) options[o.name] = o.value;
    const core = (name: string): unknown => info.buildoptions.find((b) => b.name === name)?.value;
    const mesonLog = await readFile(path.join(buildDir, 'meson-logs', 'meson-log.txt'), 'utf8').catch(() => '');
    const mesonVersion = (await exec('meson', ['--version'])).stdout.trim();
    ctx.manifest.native = {
      ...(ctx.manifest.native ?? {}),
      [platform]: {
        project: { name: info.projectinfo.descriptive_name, version: info.projectinfo.version },
        source: { path: path.relative(ctx.repoRoot, source).split(path.sep).join('/') || '.', commit: src.commit, fingerprint: src.fingerprint },
        buildtype: String(core('buildtype')),
        options,
        requestedOptions: Object.fromEntries(Object.entries(native.options ?? {}).map(([k, v]) => [k, String(v)])),
        compilers: parseCompilers(mesonLog),
        mesonVersion,
        targets: {
          library: library.name,
          cli: cli.name,
          defaultLibrary: core('default_library'),
          subprojects: info.projectinfo.subprojects.map((s) => ({ name: s.name, version: s.version })),
        },
      },
    };
    if (!testCount && native.tests !== false) ctx.log.warn('meson test ran no tests: the native gate proves nothing for this tree');
    return { notes: [`${info.projectinfo.descriptive_name} ${info.projectinfo.version}, ${testCount} native test(s) passed`] };
  },
};


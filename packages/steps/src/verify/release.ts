import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isCodedError, npmIntegrity } from '@mcp-release/manifest';
import { list as listTar } from 'tar';
import { CHECKSUMS_FILE } from '../checksums.js';
import { BUNDLE_SUFFIX } from '../sign.js';
import { mapLimit } from '../sigstore/signing.js';
import { VERIFY_CODES, verifyError } from './codes.js';
import { checkBundle, identityTest, readBundleText, type BundleVerification, type IdentityMatcher, type InTotoStatement } from './bundle.js';
import { hashFileStreaming, type FileHashes } from './digest.js';
import { downloadRelease, splitRepository } from './github.js';
import { trustMaterialOf } from './trusted-root.js';

/** The file names and types a release carries, as the release steps write them. */
export const RELEASE_LAYOUT = {
  bundleSuffix: BUNDLE_SUFFIX,
  checksums: CHECKSUMS_FILE,
  provenance: 'provenance.intoto.sigstore.json',
  npmProvenance: 'npm-provenance.sigstore.json',
  goldenGate: 'gate-golden.intoto.sigstore.json',
  slsaProvenanceV1: 'https://slsa.dev/provenance/v1',
} as const;
const CHECKSUMS_NAME = RELEASE_LAYOUT.checksums;
const PROVENANCE_BUNDLE = RELEASE_LAYOUT.provenance;
const NPM_PROVENANCE_BUNDLE = RELEASE_LAYOUT.npmProvenance;
const SLSA_PROVENANCE_V1 = RELEASE_LAYOUT.slsaProvenanceV1;
const STATEMENT_BUNDLES: string[] = [PROVENANCE_BUNDLE, NPM_PROVENANCE_BUNDLE, RELEASE_LAYOUT.goldenGate];
const SBOM_NAME = /(^|\/)[^/]*\.(spdx|cdx)\.json$/;
/** Files an SBOM is not expected to list (it is written before them, or they are not components). */
const NOT_SBOM_COMPONENTS = new Set([CHECKSUMS_NAME, 'verify.sh']);

/** Who must have signed a release: a workflow of a repository, at a ref, through an issuer. */
export interface ReleaseIdentityPolicy {
  /** `owner/name` */
  repository: string;
  /** The workflow file under .github/workflows/, e.g. `release.yml`. */
  workflow: string;
  /** A regular expression for the ref, e.g. `refs/heads/main` or `refs/tags/v[0-9]+\.[0-9]+\.[0-9]+`. */
  refPattern: string;
  issuer: string;
}

export interface GithubReleaseSource {
  repository: string;
  tag: string;
  token?: string;
  baseUrl?: string;
  /** Keep the downloaded assets here; by default they go to a temporary folder, removed afterwards. */
  downloadDir?: string;
}

export interface VerifyReleaseOptions {
  /** The release folder; or give `github` to download a release first. */
  folder?: string;
  github?: GithubReleaseSource;
  policy: ReleaseIdentityPolicy;
  trustedRoot: object;
  /** An npm registry URL: each package version must be served with the tarball's integrity. */
  registry?: string;
  registryToken?: string;
  /** Files checked at once (each is streamed). Default 4. */
  concurrency?: number;
}

export type CheckStatus = 'verified' | 'failed' | 'skipped' | 'error';
export type ReleaseStatus = 'verified' | 'not-verified' | 'could-not-check';

export interface ReleaseCheck {
  name: 'folder' | 'checksums' | 'signature' | 'signing-run' | 'provenance' | 'npm-provenance' | 'registry' | 'sbom';
  file?: string;
  status: CheckStatus;
  detail: string;
  /** The error code of a failed or errored check. */
  code?: string;
  hint?: string;
}

export interface ReleaseVerification {
  status: ReleaseStatus;
  folder: string;
  source?: { repository: string; tag: string; kept: boolean };
  identity: { san: string; issuer: string };
  /** The signing run and commit every bundle agrees on (when they do). */
  run?: string;
  commit?: string;
  /** Release files (not bundles). */
  files: string[];
  checks: ReleaseCheck[];
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The SAN a release must be signed with, as a regular expression matched against the whole SAN. */
export function releaseIdentity(policy: ReleaseIdentityPolicy): IdentityMatcher {
  const { owner, repo } = splitRepository(policy.repository);
  const workflow = policy.workflow.replace(/^\.github\/workflows\//, '');
  if (!workflow || workflow.includes('/') || !/\.ya?ml$/.test(workflow)) {
    throw verifyError(VERIFY_CODES.options, `${JSON.stringify(policy.workflow)} is not a workflow file name`, 'give the workflow file under .github/workflows/, e.g. release.yml');
  }
  if (!policy.refPattern) throw verifyError(VERIFY_CODES.options, 'no ref pattern given', 'give the ref the release was made from, e.g. refs/heads/main or refs/tags/v.*');
  return { regexp: `https://github\\.com/${escapeRe(owner)}/${escapeRe(repo)}/\\.github/workflows/${escapeRe(workflow)}@(?:${policy.refPattern})` };
}

/** The overall answer from the checks: any failure is "not verified", else any error "could not check". */
export function overallStatus(checks: readonly ReleaseCheck[]): ReleaseStatus {
  if (checks.some((c) => c.status === 'failed')) return 'not-verified';
  if (checks.some((c) => c.status === 'error') || !checks.some((c) => c.status === 'verified')) return 'could-not-check';
  return 'verified';
}

/**
 * Checks a whole release folder (or a GitHub release, downloaded first): checksums, a verifying
 * bundle for every file from the expected workflow, one signing run for all of them, provenance
 * subjects, npm provenance (and the registry's integrity), SBOM listings. Throws CANNOT_VERIFY_
 * errors only when nothing can be checked (bad options, unusable trusted root, no folder,
 * download failed); every other finding is a check in the result.
 */
export async function verifyRelease(options: VerifyReleaseOptions): Promise<ReleaseVerification> {
  const identity = releaseIdentity(options.policy);
  identityTest(identity);
  trustMaterialOf(options.trustedRoot);
  if (!options.folder && !options.github) throw verifyError(VERIFY_CODES.options, 'nothing to verify: give a release folder or a GitHub repository and tag', 'pass the folder, or --repo owner/name --tag vX.Y.Z');
  if (!options.github) return verifyFolder(options.folder as string, options, identity);

  const gh = options.github;
  const dir = gh.downloadDir ?? options.folder ?? (await mkdtemp(path.join(tmpdir(), 'mcp-release-verify-')));
  const temporary = !gh.downloadDir && !options.folder;
  try {
    await downloadRelease({ repository: gh.repository, tag: gh.tag, dir, ...(gh.token ? { token: gh.token } : {}), ...(gh.baseUrl ? { baseUrl: gh.baseUrl } : {}) });
    const result = await verifyFolder(dir, options, identity);
    return { ...result, source: { repository: gh.repository, tag: gh.tag, kept: !temporary } };
  } finally {
    if (temporary) await rm(dir, { recursive: true, force: true });
  }
}

interface Entry {
  rel: string;
  kind: 'file' | 'symlink' | 'other';
}

async function walk(root: string, rel = ''): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(root, child)));
    else out.push({ rel: child, kind: e.isFile() ? 'file' : e.isSymbolicLink() ? 'symlink' : 'other' });
  }
  return out;
}

function failure(name: ReleaseCheck['name'], file: string | undefined, err: unknown): ReleaseCheck {
  const coded = isCodedError(err);
  const verification = coded && err.code.startsWith('VERIFY_');
  return {
    name,
    ...(file ? { file } : {}),
    status: verification ? 'failed' : 'error',
    detail: (err as Error).message,
    ...(coded ? { code: err.code } : {}),
    ...(coded && err.hint ? { hint: err.hint } : {}),
  };
}

const failed = (name: ReleaseCheck['name'], file: string | undefined, code: string, detail: string, hint: string): ReleaseCheck => ({ name, ...(file ? { file } : {}), status: 'failed', detail, code, hint });
const verified = (name: ReleaseCheck['name'], file: string | undefined, detail: string): ReleaseCheck => ({ name, ...(file ? { file } : {}), status: 'verified', detail });
const skipped = (name: ReleaseCheck['name'], file: string | undefined, detail: string): ReleaseCheck => ({ name, ...(file ? { file } : {}), status: 'skipped', detail });

const withoutAttempt = (run: string): string => run.replace(/\/attempts\/\d+$/, '');

async function verifyFolder(folder: string, options: VerifyReleaseOptions, identity: IdentityMatcher): Promise<ReleaseVerification> {
  let entries: Entry[];
  try {
    entries = await walk(folder);
  } catch (err) {
    throw verifyError(VERIFY_CODES.inputUnreadable, `cannot read the release folder ${folder}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`, 'give the folder that holds the release files and their .sigstore.json bundles', { cause: err });
  }
  const checks: ReleaseCheck[] = [];
  const limit = options.concurrency ?? 4;
  for (const e of entries.filter((x) => x.kind !== 'file')) {
    checks.push(failed('folder', e.rel, VERIFY_CODES.notAFile, `${e.rel} is a ${e.kind === 'symlink' ? 'symbolic link' : 'special file'}, not a release file`, 'releases hold plain files only; replace it with the file from the release'));
  }
  const plain = entries.filter((x) => x.kind === 'file').map((x) => x.rel);
  const bundles = new Set(plain.filter((f) => f.endsWith(BUNDLE_SUFFIX)));
  const files = plain.filter((f) => !f.endsWith(BUNDLE_SUFFIX)).sort();

  // every file hashed once, streaming: sha256 and sha512 in one pass
  const hashes = new Map<string, FileHashes>();
  await mapLimit(files, limit, async (f) => {
    try {
      hashes.set(f, await hashFileStreaming(path.join(folder, f), ['sha256', 'sha512']));
    } catch (err) {
      checks.push(failure('folder', f, err));
    }
  });
  const bySha256 = new Map<string, string>([...hashes].map(([f, h]) => [h.sha256 as string, f]));

  checks.push(...(await checkChecksums(folder, files, hashes)));

  // signatures: one bundle per file, plus the statement bundles
  const signed = new Map<string, BundleVerification>();
  const signatureChecks = await mapLimit(files, limit, async (f): Promise<ReleaseCheck> => {
    const bundleRel = `${f}${BUNDLE_SUFFIX}`;
    if (!bundles.has(bundleRel)) {
      return failed('signature', f, VERIFY_CODES.bundleMissing, `${f} has no signature: ${bundleRel} is not in the release`, 'every release file is signed; download the bundle with the file, or distrust a file the release never signed');
    }
    const h = hashes.get(f);
    try {
      const text = await readBundleText(path.join(folder, bundleRel));
      const result = await checkBundle({ where: bundleRel, text, artifact: { file: path.join(folder, f), ...(h ? { hashes: h } : {}) }, identity, issuer: options.policy.issuer, trustedRoot: options.trustedRoot });
      signed.set(bundleRel, result);
      return verified('signature', f, `signed by ${result.san}; Rekor entry ${result.logIndex}${result.integratedTime ? ` at ${result.integratedTime}` : ''}`);
    } catch (err) {
      const check = failure('signature', f, err);
      if (isCodedError(err) && err.code === VERIFY_CODES.digestMismatch) {
        const other = await signedDigest(path.join(folder, bundleRel)).then((d) => (d ? bySha256.get(d) : undefined));
        if (other && other !== f) check.detail = `${bundleRel} is the signature of ${other}, not of ${f}: ${check.detail}`;
      }
      return check;
    }
  });
  checks.push(...signatureChecks);

  const statements = new Map<string, InTotoStatement>();
  for (const name of STATEMENT_BUNDLES) {
    if (!bundles.has(name)) continue;
    try {
      const text = await readBundleText(path.join(folder, name));
      const result = await checkBundle({ where: name, text, identity, issuer: options.policy.issuer, trustedRoot: options.trustedRoot });
      if (!result.statement) throw verifyError(VERIFY_CODES.statementInvalid, `${name} holds a message signature, not a signed statement`, 'the statement bundles of a release are DSSE bundles of in-toto statements');
      signed.set(name, result);
      statements.set(name, result.statement);
      checks.push(verified('signature', name, `statement (${result.statement.predicateType}) signed by ${result.san}; Rekor entry ${result.logIndex}${result.integratedTime ? ` at ${result.integratedTime}` : ''}`));
    } catch (err) {
      checks.push(failure('signature', name, err));
    }
  }
  for (const b of [...bundles].sort()) {
    if (STATEMENT_BUNDLES.includes(b) || hashes.has(b.slice(0, -BUNDLE_SUFFIX.length)) || files.includes(b.slice(0, -BUNDLE_SUFFIX.length))) continue;
    checks.push(failed('signature', b, VERIFY_CODES.bundleOrphan, `${b} is the signature of ${b.slice(0, -BUNDLE_SUFFIX.length)}, which is not in the release`, 'a file of the release was removed, or a stray bundle was added: get the complete release again'));
  }

  const run = checkSigningRun(signed);
  checks.push(...run.checks);
  checks.push(...checkProvenance(files, hashes, bundles, statements));
  const npm = checkNpmProvenance(files, hashes, bundles, statements);
  checks.push(...npm);
  if (options.registry) checks.push(...(await checkRegistry(folder, files, hashes, options.registry, options.registryToken)));
  checks.push(...(await checkSboms(folder, files, hashes)));

  const order: ReleaseCheck['name'][] = ['folder', 'checksums', 'signature', 'signing-run', 'provenance', 'npm-provenance', 'registry', 'sbom'];
  checks.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name) || (a.file ?? '').localeCompare(b.file ?? ''));
  return {
    status: overallStatus(checks),
    folder,
    identity: { san: `^(?:${(identity as { regexp: string }).regexp})$`, issuer: options.policy.issuer },
    ...(run.run ? { run: run.run } : {}),
    ...(run.commit ? { commit: run.commit } : {}),
    files,
    checks,
  };
}

async function signedDigest(bundleFile: string): Promise<string | undefined> {
  try {
    const json = JSON.parse(await readFile(bundleFile, 'utf8')) as { messageSignature?: { messageDigest?: { digest?: string } } };
    const d = json.messageSignature?.messageDigest?.digest;
    return d ? Buffer.from(d, 'base64').toString('hex') : undefined;
  } catch {
    return undefined;
  }
}

async function checkChecksums(folder: string, files: string[], hashes: Map<string, FileHashes>): Promise<ReleaseCheck[]> {
  const hint = 'SHA256SUMS is signed with the release: a difference means a file or the list was changed; get the file from the release again';
  if (!files.includes(CHECKSUMS_NAME)) {
    return [failed('checksums', CHECKSUMS_NAME, VERIFY_CODES.checksumsMissing, `${CHECKSUMS_NAME} is not in the release`, 'every release has SHA256SUMS; download it with the other files')];
  }
  let text: string;
  try {
    text = await readFile(path.join(folder, CHECKSUMS_NAME), 'utf8');
  } catch (err) {
    return [failure('checksums', CHECKSUMS_NAME, verifyError(VERIFY_CODES.inputUnreadable, `cannot read ${CHECKSUMS_NAME}: ${(err as Error).message}`, 'make the file readable', { cause: err }))];
  }
  const out: ReleaseCheck[] = [];
  const listed = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.replace(/\r$/, ''));
    if (!m) {
      out.push(failed('checksums', CHECKSUMS_NAME, VERIFY_CODES.checksumsMalformed, `${CHECKSUMS_NAME} line ${i + 1} is not "<sha256>  <name>": ${JSON.stringify(line.slice(0, 120))}`, hint));
      return;
    }
    const name = (m[2] as string).replace(/^\.\//, '');
    if (listed.has(name)) {
      out.push(failed('checksums', name, VERIFY_CODES.checksumsMalformed, `${CHECKSUMS_NAME} lists ${name} twice (line ${i + 1})`, hint));
      return;
    }
    listed.set(name, (m[1] as string).toLowerCase());
  });
  for (const [name, digest] of listed) {
    const h = hashes.get(name);
    if (!files.includes(name) || name === CHECKSUMS_NAME) {
      out.push(failed('checksums', name, VERIFY_CODES.fileMissing, `${name} is listed in ${CHECKSUMS_NAME} but is not in the release`, 'download the complete release (every asset)'));
    } else if (h && h.sha256 !== digest) {
      out.push(failed('checksums', name, VERIFY_CODES.checksumMismatch, `${name} has sha256 ${h.sha256}, ${CHECKSUMS_NAME} says ${digest}`, hint));
    } else if (h) {
      out.push(verified('checksums', name, `sha256 ${digest} as listed`));
    }
  }
  for (const f of files) {
    if (f !== CHECKSUMS_NAME && !listed.has(f)) {
      out.push(failed('checksums', f, VERIFY_CODES.fileUnlisted, `${f} is in the release folder but not in ${CHECKSUMS_NAME}`, 'a file the release did not list was added; remove it, or get the release again'));
    }
  }
  return out;
}

function checkSigningRun(signed: Map<string, BundleVerification>): { checks: ReleaseCheck[]; run?: string; commit?: string } {
  if (!signed.size) return { checks: [skipped('signing-run', undefined, 'no bundle verified, so no signing run to compare')] };
  const checks: ReleaseCheck[] = [];
  const known = [...signed].filter(([bundle, r]) => {
    if (r.run && r.commit) return true;
    checks.push(failed('signing-run', bundle, VERIFY_CODES.runUnknown, `${bundle} was signed with a certificate that names no ${r.run ? 'source commit' : 'workflow run'}`, 'release bundles are signed by a GitHub Actions workflow, whose certificate names the run and the commit'));
    return false;
  });
  if (!known.length) return { checks };
  const key = (r: BundleVerification): string => `${withoutAttempt(r.run as string)} ${r.commit}`;
  const reference =
    signed.get(PROVENANCE_BUNDLE)?.run ? (signed.get(PROVENANCE_BUNDLE) as BundleVerification) : signed.get(`${CHECKSUMS_NAME}${BUNDLE_SUFFIX}`)?.run ? (signed.get(`${CHECKSUMS_NAME}${BUNDLE_SUFFIX}`) as BundleVerification) : mostCommon(known.map(([, r]) => r), key);
  const refKey = key(reference);
  let odd = 0;
  for (const [bundle, r] of known) {
    if (key(r) === refKey) continue;
    odd += 1;
    checks.push(
      failed('signing-run', bundle, VERIFY_CODES.mixedRuns, `${bundle} was signed by run ${r.run} at commit ${r.commit}, the rest of the release by run ${reference.run} at commit ${reference.commit}: it comes from another release`, 'files of another release (or another run) were mixed into this one; get every file from the same release'),
    );
  }
  if (!odd) checks.push(verified('signing-run', undefined, `all ${known.length} bundles were signed by ${withoutAttempt(reference.run as string)} at commit ${reference.commit}`));
  return { checks, run: reference.run as string, commit: reference.commit as string };
}

function mostCommon<T>(items: T[], key: (t: T) => string): T {
  const counts = new Map<string, number>();
  for (const t of items) counts.set(key(t), (counts.get(key(t)) ?? 0) + 1);
  return [...items].sort((a, b) => (counts.get(key(b)) ?? 0) - (counts.get(key(a)) ?? 0))[0] as T;
}

function checkProvenance(files: string[], hashes: Map<string, FileHashes>, bundles: Set<string>, statements: Map<string, InTotoStatement>): ReleaseCheck[] {
  const hint = 'the provenance names every release file with its digest; a difference means a file was changed, added or removed after the release was built';
  if (!bundles.has(PROVENANCE_BUNDLE)) return [failed('provenance', PROVENANCE_BUNDLE, VERIFY_CODES.provenanceMissing, `${PROVENANCE_BUNDLE} is not in the release`, 'every release carries its SLSA provenance; download it with the other files')];
  const statement = statements.get(PROVENANCE_BUNDLE);
  if (!statement) return [skipped('provenance', PROVENANCE_BUNDLE, 'its bundle did not verify (see the signature check), so its subjects are not trusted')];
  if (statement.predicateType !== SLSA_PROVENANCE_V1) {
    return [failed('provenance', PROVENANCE_BUNDLE, VERIFY_CODES.provenanceType, `${PROVENANCE_BUNDLE} holds a ${statement.predicateType} statement, not SLSA provenance (${SLSA_PROVENANCE_V1})`, 'the release provenance is an in-toto statement of SLSA provenance v1')];
  }
  const out: ReleaseCheck[] = [];
  const subjects = new Map(statement.subject.map((s) => [s.name ?? '', (s.digest.sha256 ?? '').toLowerCase()]));
  for (const f of files) {
    const h = hashes.get(f);
    if (!h) continue;
    const digest = subjects.get(f);
    if (digest === undefined) {
      if (f !== CHECKSUMS_NAME) out.push(failed('provenance', f, VERIFY_CODES.provenanceSubjectMissing, `${f} is not a subject of the provenance`, hint));
    } else if (digest !== h.sha256) {
      out.push(failed('provenance', f, VERIFY_CODES.provenanceSubjectDigest, `the provenance names ${f} with sha256 ${digest || '(none)'}, the file has ${h.sha256}`, hint));
    }
  }
  for (const name of subjects.keys()) {
    if (!files.includes(name)) out.push(failed('provenance', name, VERIFY_CODES.provenanceSubjectExtra, `the provenance names ${name || '(a subject without a name)'}, which is not in the release`, hint));
  }
  if (!out.length) out.push(verified('provenance', PROVENANCE_BUNDLE, `${subjects.size} subjects match the release files`));
  return out;
}

/** `pkg:npm/%40scope/name@1.2.3` to its name and version. */
export function parseNpmPurl(purl: string): { name: string; version: string } | undefined {
  const m = /^pkg:npm\/(.+)@([^@/?#]+)$/.exec(purl);
  if (!m) return undefined;
  try {
    return { name: decodeURIComponent(m[1] as string), version: decodeURIComponent(m[2] as string) };
  } catch {
    return undefined;
  }
}

function checkNpmProvenance(files: string[], hashes: Map<string, FileHashes>, bundles: Set<string>, statements: Map<string, InTotoStatement>): ReleaseCheck[] {
  const tarballs = files.filter((f) => f.endsWith('.tgz'));
  if (!bundles.has(NPM_PROVENANCE_BUNDLE)) return [skipped('npm-provenance', undefined, `${NPM_PROVENANCE_BUNDLE}: not in this release`)];
  const statement = statements.get(NPM_PROVENANCE_BUNDLE);
  if (!statement) return [skipped('npm-provenance', NPM_PROVENANCE_BUNDLE, 'its bundle did not verify (see the signature check), so its subjects are not trusted')];
  const hint = 'the npm provenance names each published tarball by its sha512; a difference means the tarball in the release is not the one published';
  const out: ReleaseCheck[] = [];
  const subjects = statement.subject.map((s) => ({ name: s.name ?? '', sha512: (s.digest.sha512 ?? '').toLowerCase() }));
  const used = new Set<string>();
  for (const t of tarballs) {
    const h = hashes.get(t);
    if (!h) continue;
    const s = subjects.find((x) => x.sha512 === h.sha512);
    if (!s) out.push(failed('npm-provenance', t, VERIFY_CODES.npmProvenanceMismatch, `no subject of the npm provenance has ${t}'s sha512 (${(h.sha512 ?? '').slice(0, 16)}…)`, hint));
    else {
      used.add(s.name);
      out.push(verified('npm-provenance', t, `${parseNpmPurl(s.name) ? `${parseNpmPurl(s.name)?.name}@${parseNpmPurl(s.name)?.version}` : s.name}, sha512 as signed`));
    }
  }
  for (const s of subjects) {
    if (!used.has(s.name)) out.push(failed('npm-provenance', s.name, VERIFY_CODES.npmProvenanceMismatch, `the npm provenance names ${s.name}, and no tarball in the release has its sha512`, hint));
  }
  if (!out.length) out.push(skipped('npm-provenance', NPM_PROVENANCE_BUNDLE, 'the statement names no packages'));
  return out;
}

async function tarballPackage(file: string): Promise<{ name: string; version: string } | undefined> {
  let text = '';
  await listTar({
    file,
    onReadEntry(entry) {
      if (entry.path === 'package/package.json') entry.on('data', (c: Buffer) => (text += c.toString('utf8')));
    },
  });
  if (!text) return undefined;
  const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
  return typeof pkg.name === 'string' && typeof pkg.version === 'string' ? { name: pkg.name, version: pkg.version } : undefined;
}

async function checkRegistry(folder: string, files: string[], hashes: Map<string, FileHashes>, registry: string, token: string | undefined): Promise<ReleaseCheck[]> {
  const tarballs = files.filter((f) => f.endsWith('.tgz') && hashes.has(f));
  if (!tarballs.length) return [skipped('registry', undefined, 'no npm tarball in this release')];
  const base = registry.replace(/\/+$/, '');
  const out: ReleaseCheck[] = [];
  for (const t of tarballs) {
    let pkg: { name: string; version: string } | undefined;
    try {
      pkg = await tarballPackage(path.join(folder, t));
    } catch (err) {
      out.push(failed('registry', t, VERIFY_CODES.npmProvenanceMismatch, `${t} is not a readable npm tarball: ${(err as Error).message}`, 'the tarball is damaged; get it from the release again'));
      continue;
    }
    if (!pkg) {
      out.push(failed('registry', t, VERIFY_CODES.npmProvenanceMismatch, `${t} has no package/package.json with a name and version`, 'the tarball is not an npm package'));
      continue;
    }
    const expected = npmIntegrity((hashes.get(t) as FileHashes).sha512 as string);
    const url = `${base}/${pkg.name.replace('/', '%2f')}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      out.push(failure('registry', t, verifyError(VERIFY_CODES.registry, `could not ask ${base} for ${pkg.name}: ${(err as Error).message}`, 'check the registry URL and the network, then run again', { cause: err })));
      continue;
    }
    if (res.status === 404) {
      await res.body?.cancel();
      out.push(failed('registry', t, VERIFY_CODES.registryVersionMissing, `${base} does not have ${pkg.name} at all`, 'the package was not published there (yet), or the registry URL is wrong'));
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      out.push(failure('registry', t, verifyError(VERIFY_CODES.registry, `${base} answered HTTP ${res.status} for ${pkg.name}`, res.status === 401 || res.status === 403 ? 'the registry wants a token (registryToken)' : 'the registry is failing; run again later')));
      continue;
    }
    // an answer that is not a JSON object (not JSON, null, a list) is a registry without this version
    const body: unknown = await res.json().catch(() => undefined);
    const packument = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as { versions?: Record<string, { dist?: { integrity?: string } } | null> };
    const served = packument.versions?.[pkg.version]?.dist?.integrity;
    if (!packument.versions?.[pkg.version]) {
      out.push(failed('registry', t, VERIFY_CODES.registryVersionMissing, `${base} has no ${pkg.name}@${pkg.version}`, 'the version was not published, or was unpublished'));
    } else if (served !== expected) {
      out.push(failed('registry', t, VERIFY_CODES.registryIntegrityMismatch, `${base} serves ${pkg.name}@${pkg.version} with integrity ${served ?? '(none)'}, the release tarball is ${expected}`, 'the published package is not the released tarball: do not install it; report it to the maintainers'));
    } else {
      out.push(verified('registry', t, `${pkg.name}@${pkg.version} is served with the tarball's integrity`));
    }
  }
  return out;
}

interface SbomListing {
  names: string[];
  sha256: string[];
}

/** Every object in an SPDX or CycloneDX document that names a file and gives its sha256. */
function sbomListings(doc: unknown): SbomListing[] {
  const out: SbomListing[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    const names = ['fileName', 'packageFileName', 'name'].map((k) => o[k]).filter((v): v is string => typeof v === 'string').map((v) => v.replace(/^\.\//, ''));
    const sha256: string[] = [];
    for (const list of [o.checksums, o.hashes]) {
      if (!Array.isArray(list)) continue;
      for (const c of list as Array<Record<string, unknown>>) {
        const alg = String(c?.algorithm ?? c?.alg ?? '').replace(/[-_]/g, '').toLowerCase();
        const value = c?.checksumValue ?? c?.content ?? c?.hashValue;
        if (alg === 'sha256' && typeof value === 'string') sha256.push(value.toLowerCase());
      }
    }
    if (names.length && sha256.length) out.push({ names, sha256 });
    for (const v of Object.values(o)) if (v && typeof v === 'object') visit(v);
  };
  visit(doc);
  return out;
}

async function checkSboms(folder: string, files: string[], hashes: Map<string, FileHashes>): Promise<ReleaseCheck[]> {
  const sboms = files.filter((f) => SBOM_NAME.test(f));
  if (!sboms.length) return [skipped('sbom', undefined, 'SBOM: not in this release')];
  const out: ReleaseCheck[] = [];
  const hint = 'the SBOM is made from the release files; a difference means a file changed after the SBOM was made, or the SBOM belongs to another release';
  for (const sbom of sboms) {
    let listings: SbomListing[];
    try {
      listings = sbomListings(JSON.parse(await readFile(path.join(folder, sbom), 'utf8')));
    } catch (err) {
      out.push(failed('sbom', sbom, VERIFY_CODES.sbomMismatch, `${sbom} is not JSON: ${(err as Error).message}`, 'the SBOM is damaged; get it from the release again'));
      continue;
    }
    const before = out.length;
    let listed = 0;
    for (const f of files) {
      const h = hashes.get(f);
      if (!h || sboms.includes(f)) continue;
      const base = f.split('/').pop() as string;
      const named = listings.filter((l) => l.names.includes(f) || l.names.includes(base));
      if (named.some((l) => l.sha256.includes(h.sha256 as string))) {
        listed += 1;
      } else if (named.length) {
        out.push(failed('sbom', f, VERIFY_CODES.sbomMismatch, `${sbom} lists ${f} with sha256 ${named.flatMap((l) => l.sha256).join(', ')}, the file has ${h.sha256}`, hint));
      } else if (!NOT_SBOM_COMPONENTS.has(f)) {
        out.push(failed('sbom', f, VERIFY_CODES.sbomMismatch, `${sbom} does not list ${f} with its sha256`, hint));
      }
    }
    if (out.length === before) out.push(verified('sbom', sbom, `lists ${listed} release files with their sha256`));
  }
  return out;
}

const STATUS_LABEL: Record<CheckStatus, string> = { verified: 'ok', failed: 'FAILED', skipped: 'skipped', error: 'ERROR' };
const OVERALL_LABEL: Record<ReleaseStatus, string> = { verified: 'VERIFIED', 'not-verified': 'NOT VERIFIED', 'could-not-check': 'COULD NOT CHECK' };

/** A readable table of the checks, with the overall answer first and the fixes of failures last. */
export function renderReleaseVerification(result: ReleaseVerification): string {
  const rows = result.checks.map((c) => [STATUS_LABEL[c.status], c.name, c.file ?? '', c.detail]);
  const head = ['STATUS', 'CHECK', 'FILE', 'DETAIL'];
  const widths = [0, 1, 2].map((i) => Math.max(head[i]?.length ?? 0, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]): string => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] as number) : cell)).join('  ').trimEnd();
  const source = result.source ? `${result.source.repository} ${result.source.tag}` : result.folder;
  const out = [
    `${OVERALL_LABEL[result.status]}: ${source}`,
    `identity: ${result.identity.san} (issuer ${result.identity.issuer})`,
    ...(result.run ? [`signing run: ${result.run} at commit ${result.commit}`] : []),
    '',
    line(head),
    ...rows.map(line),
  ];
  const fixes = [...new Set(result.checks.filter((c) => (c.status === 'failed' || c.status === 'error') && c.hint).map((c) => `${c.code}: ${c.hint}`))];
  if (fixes.length) out.push('', 'what to do:', ...fixes.map((f) => `  ${f}`));
  return `${out.join('\n')}\n`;
}

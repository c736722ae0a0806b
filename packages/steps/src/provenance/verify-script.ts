import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { compareNames, writeFileAtomic, type Manifest } from '@mcp-release/manifest';
import { skip, type Step } from '@mcp-release/pipeline';
import { CHECKSUMS_FILE } from '../checksums.js';
import { StepError } from '../errors.js';
import type { ReleaseContext, ReleaseOptions } from '../options.js';
import { digestOf } from '../source.js';
import { readJobClaims, serverUrlFromEnv, signingIdentity } from './claims.js';
import { PROVENANCE_FILE } from './statement.js';

export const VERIFY_SCRIPT_FILE = 'verify.sh';

/** Release file names the script accepts: letters, digits, `.`, `_`, `+`, `-`, not starting with `.` or `-`. */
export const SCRIPT_SAFE_NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/;

export interface VerifyScriptInput {
  /** The release tag (default for TAG). */
  tag: string;
  /** `owner/name` (default for REPO). */
  repository: string;
  /** The planned commit, named in the script's header. */
  commit: string;
  /** The exact certificate identity (SAN) the signatures must carry. */
  identity: string;
  /** The exact OIDC issuer the certificate must name. */
  issuer: string;
  /** Release files besides SHA256SUMS and verify.sh (which the script always covers). */
  files: string[];
}

/** The release files known at this point, without checksums, signatures, provenance and the script itself. */
export function verifyScriptFiles(manifest: Manifest): string[] {
  return manifest.artifacts
    .filter((a) => !['checksums', 'sigstore-bundle', 'provenance', 'verify-script'].includes(a.kind) && !a.path.endsWith('.sigstore.json'))
    .map((a) => a.path)
    .sort(compareNames);
}

/** Single-quoted for sh: safe for any text without NUL. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function assertPlain(value: string, what: string, fix: string): void {
  // Control characters would end up in comments and messages; nothing legitimate has them.
  if (value === '' || [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new StepError('VERIFY_SCRIPT_UNSAFE_VALUE', `the ${what} ${JSON.stringify(value)} is empty or has control characters`, { hint: fix });
  }
}

function validate(input: VerifyScriptInput): void {
  for (const name of [...input.files, CHECKSUMS_FILE, VERIFY_SCRIPT_FILE]) {
    if (!SCRIPT_SAFE_NAME.test(name)) {
      throw new StepError('VERIFY_SCRIPT_UNSAFE_NAME', `release file ${JSON.stringify(name)} cannot be named safely in verify.sh: only letters, digits, '.', '_', '+' and '-' are allowed, and no leading '.' or '-'`, {
        hint: 'rename the release file (release assets are flat, so no folders either) in the step that produces it, then run that step again',
      });
    }
  }
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(input.repository)) {
    throw new StepError('VERIFY_SCRIPT_UNSAFE_VALUE', `the repository ${JSON.stringify(input.repository)} is not of the form owner/name`, {
      hint: "the repository comes from the job's OIDC token (repository claim); run the step inside the release workflow",
    });
  }
  assertPlain(input.tag, 'release tag', 'fix the tag scheme in the release policy (release.tag) and plan again');
  assertPlain(input.identity, 'certificate identity', "the identity comes from the job's OIDC token (job_workflow_ref claim)");
  assertPlain(input.issuer, 'OIDC issuer', "the issuer comes from the job's OIDC token (iss claim)");
  assertPlain(input.commit, 'commit', 'plan again');
}

/**
 * The consumer's check of a release, as a POSIX sh script that needs only gh and cosign (and
 * sha256sum or shasum): download the assets, check SHA256SUMS, check every file's Sigstore
 * signature against the exact identity and issuer, and check that the SLSA provenance covers
 * every file. It stops at the first failure with a line saying what failed. The same input
 * always gives the same bytes.
 */
export function renderVerifyScript(input: VerifyScriptInput): string {
  validate(input);
  const signed = [...new Set([...input.files, CHECKSUMS_FILE, VERIFY_SCRIPT_FILE])].sort(compareNames);
  const summed = signed.filter((f) => f !== CHECKSUMS_FILE);
  const q = shellQuote;
  const lines = [
    '#!/bin/sh',
    `# Verifies release ${input.tag} of ${input.repository} (commit ${input.commit}).`,
    '#',
    '#   1. downloads the release assets with gh,',
    `#   2. checks every file against ${CHECKSUMS_FILE},`,
    `#   3. checks the Sigstore signature of every file, ${CHECKSUMS_FILE} and this script,`,
    `#   4. checks that the SLSA provenance (${PROVENANCE_FILE}) covers every file.`,
    '#',
    '# Signatures count only when their certificate names exactly this identity and issuer:',
    `#   ${input.identity}`,
    `#   ${input.issuer}`,
    '#',
    '# Needs gh (https://cli.github.com), cosign (https://docs.sigstore.dev) and sha256sum or shasum.',
    '# Usage: sh verify.sh [--tag TAG] [--repo OWNER/NAME] [--dir DIR] [--no-download]',
    '#   TAG, REPO and DIR can also come from the environment. --no-download checks the files',
    '#   already in DIR (default: the current folder). VERIFY_TRUSTED_ROOT names a trusted_root.json',
    '#   for a private Sigstore instance (passed to cosign as --trusted-root).',
    "# The files checked are this release's, listed at the end; --tag only changes what is downloaded.",
    '# Written by mcp-release: the same release always gives the same script.',
    '',
    'set -u',
    '',
    `RELEASE_TAG=${q(input.tag)}`,
    `RELEASE_REPO=${q(input.repository)}`,
    `IDENTITY=${q(input.identity)}`,
    `ISSUER=${q(input.issuer)}`,
    `PROVENANCE=${q(PROVENANCE_FILE)}`,
    `CHECKSUMS=${q(CHECKSUMS_FILE)}`,
    '',
    'TAG=${TAG:-$RELEASE_TAG}',
    'REPO=${REPO:-$RELEASE_REPO}',
    'DIR=${DIR:-}',
    'DOWNLOAD=1',
    '',
    "say() { printf '%s\\n' \"$*\"; }",
    "fail() { printf 'verify.sh: FAILED: %s\\n' \"$*\" >&2; exit 1; }",
    'usage() {',
    "  say 'usage: sh verify.sh [--tag TAG] [--repo OWNER/NAME] [--dir DIR] [--no-download]'",
    '  say "defaults: tag $RELEASE_TAG, repository $RELEASE_REPO, folder release-<tag> (the current folder with --no-download)"',
    '}',
    '',
    'while [ "$#" -gt 0 ]; do',
    '  case $1 in',
    "    --tag | -t) [ \"$#\" -ge 2 ] || fail 'option --tag needs a value'; TAG=$2; shift 2 ;;",
    '    --tag=*) TAG=${1#*=}; shift ;;',
    "    --repo | -R) [ \"$#\" -ge 2 ] || fail 'option --repo needs a value'; REPO=$2; shift 2 ;;",
    '    --repo=*) REPO=${1#*=}; shift ;;',
    "    --dir | -D) [ \"$#\" -ge 2 ] || fail 'option --dir needs a value'; DIR=$2; shift 2 ;;",
    '    --dir=*) DIR=${1#*=}; shift ;;',
    '    --no-download) DOWNLOAD=0; shift ;;',
    '    -h | --help) usage; exit 0 ;;',
    '    *) fail "unknown argument: $1 (see --help)" ;;',
    '  esac',
    'done',
    '',
    'if [ -z "$DIR" ]; then',
    '  if [ "$DOWNLOAD" = 1 ]; then DIR="release-$TAG"; else DIR=.; fi',
    'fi',
    'case $DIR in -*) DIR="./$DIR" ;; esac',
    '',
    "command -v cosign >/dev/null 2>&1 || fail 'cosign is not installed (https://docs.sigstore.dev/cosign/system_config/installation/)'",
    'if command -v sha256sum >/dev/null 2>&1; then',
    '  SHA256_TOOL=sha256sum',
    'elif command -v shasum >/dev/null 2>&1; then',
    '  SHA256_TOOL=shasum',
    'else',
    "  fail 'neither sha256sum nor shasum is installed'",
    'fi',
    '',
    'if [ "$DOWNLOAD" = 1 ]; then',
    "  command -v gh >/dev/null 2>&1 || fail 'gh (GitHub CLI) is not installed (https://cli.github.com)'",
    '  say "downloading release $TAG of $REPO into $DIR"',
    '  mkdir -p "$DIR" || fail "cannot create the folder $DIR"',
    '  gh release download "$TAG" -R "$REPO" -D "$DIR" --clobber || fail "gh could not download release $TAG of $REPO"',
    'fi',
    'cd "$DIR" || fail "cannot enter the folder $DIR"',
    '',
    'run_cosign() {',
    '  sub=$1',
    '  shift',
    '  if [ -n "${VERIFY_TRUSTED_ROOT:-}" ]; then',
    '    cosign "$sub" --trusted-root "$VERIFY_TRUSTED_ROOT" "$@"',
    '  else',
    '    cosign "$sub" "$@"',
    '  fi',
    '}',
    '',
    'present() {',
    '  [ -f "$1" ] || fail "$1 is missing from $DIR"',
    '}',
    '',
    'listed() {',
    '  awk -v f="$1" \'$2 == f { found = 1 } END { exit found ? 0 : 1 }\' "$CHECKSUMS" || fail "$CHECKSUMS does not list $1"',
    '}',
    '',
    'check_sums() {',
    '  if [ "$SHA256_TOOL" = sha256sum ]; then',
    '    sha256sum -c "$CHECKSUMS" || fail "a file does not match $CHECKSUMS (see the lines above)"',
    '  else',
    '    shasum -a 256 -c "$CHECKSUMS" || fail "a file does not match $CHECKSUMS (see the lines above)"',
    '  fi',
    '  say "ok: every file matches $CHECKSUMS"',
    '}',
    '',
    'verify_blob() {',
    '  present "$1"',
    '  present "$1.sigstore.json"',
    '  run_cosign verify-blob --bundle "$1.sigstore.json" --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" "$1" ||',
    '    fail "the signature of $1 does not verify for $IDENTITY ($ISSUER)"',
    '  say "ok: signature of $1"',
    '}',
    '',
    'verify_provenance() {',
    '  present "$1"',
    '  present "$PROVENANCE"',
    '  run_cosign verify-blob-attestation --bundle "$PROVENANCE" --new-bundle-format --type slsaprovenance1 --certificate-identity "$IDENTITY" --certificate-oidc-issuer "$ISSUER" "$1" ||',
    '    fail "the provenance in $PROVENANCE does not verify for $1 ($IDENTITY, $ISSUER)"',
    '  say "ok: provenance of $1"',
    '}',
    '',
    'say "verifying release $TAG of $REPO in $DIR"',
    '',
    `# ${CHECKSUMS_FILE} must list every release file, and every file must match it.`,
    'present "$CHECKSUMS"',
    ...summed.map((f) => `listed ${q(f)}`),
    'check_sums',
    '',
    '# Every file, SHA256SUMS and this script carry a Sigstore signature by the release workflow.',
    ...signed.map((f) => `verify_blob ${q(f)}`),
    '',
    '# The SLSA provenance names every file as built by the release workflow from the planned commit.',
    ...signed.map((f) => `verify_provenance ${q(f)}`),
    '',
    `say "verified release $TAG of $REPO: ${summed.length} files match $CHECKSUMS; these and $CHECKSUMS (${signed.length} files) are signed by $IDENTITY and covered by the provenance"`,
    '',
  ];
  return lines.join('\n');
}

async function scriptInput(ctx: ReleaseContext): Promise<VerifyScriptInput> {
  const claims = await readJobClaims(ctx.deps.env);
  const { san, issuer } = signingIdentity(claims, serverUrlFromEnv(ctx.deps.env));
  return { tag: ctx.manifest.plan.tag, repository: claims.repository, commit: ctx.manifest.plan.commit, identity: san, issuer, files: verifyScriptFiles(ctx.manifest) };
}

/**
 * Writes verify.sh into the release folder. It runs before checksums, so the script is itself
 * listed in SHA256SUMS, signed and attested like every other release file. The identity and
 * issuer come from the job's OIDC token now: the same identity the sign step's certificate
 * will carry.
 */
export const verifyScriptStep: Step<ReleaseOptions> = {
  name: 'verify-script',
  description: `write ${VERIFY_SCRIPT_FILE}: how a consumer checks this release with gh and cosign`,
  skip(ctx) {
    return verifyScriptFiles(ctx.manifest).length === 0 ? skip('there are no release files to verify') : undefined;
  },
  async fingerprint(ctx) {
    return digestOf({ step: 'verify-script', script: renderVerifyScript(await scriptInput(ctx)) });
  },
  async run(ctx) {
    const input = await scriptInput(ctx);
    const text = renderVerifyScript(input);
    const file = path.join(ctx.releaseDir, VERIFY_SCRIPT_FILE);
    await writeFileAtomic(file, text);
    await chmod(file, 0o755);
    await ctx.addArtifact(VERIFY_SCRIPT_FILE, 'verify-script', 'any', { files: input.files.length + 2, identity: input.identity, issuer: input.issuer });
    return { notes: [`${input.files.length + 2} file(s), identity ${input.identity}`] };
  },
};

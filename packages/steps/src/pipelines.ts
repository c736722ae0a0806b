import type { Step } from '@mcp-release/pipeline';
import { buildNativeStep } from './build-native.js';
import { buildNpmStep } from './build-npm.js';
import { checksumsStep } from './checksums.js';
import type { ReleaseOptions } from './options.js';
import { planStep } from './plan.js';
import { gateGoldenStep, goldenAttestationStep } from './gate/index.js';
import { provenanceStep, verifyScriptStep } from './provenance/index.js';
import { sbomStep } from './sbom/index.js';
import { signStep } from './sign.js';
import { smokeMcpStep } from './smoke-mcp.js';
import { verifyReleaseStep } from './verify-step.js';
import { mcpConsistencyStep } from './mcp-consistency.js';
import { releaseDraftStep, undraftStep, verifyDraftStep, verifyPublishedStep } from './publish/github/index.js';
import { publishNpmStep, waitRegistryStep } from './publish/npm/index.js';
import { pushTagStep } from './publish/tag.js';

/**
 * The release order, in one place. Each later issue inserts its steps here; the comments say why
 * each step sits where it does.
 */
export const releaseSteps = {
  // 1. The plan is frozen before anything else runs: packages, versions, tag, commit and the
  //    release time. Every step after it reads the plan and never the clock.
  plan: planStep,
  // 2. Pack the npm packages first: it is quick, and a broken package.json should fail the
  //    release before the long native build starts.
  buildNpm: buildNpmStep,
  // 3. Build the native artifacts with meson; `meson test` is a gate inside this step, so a
  //    failing native test stops the release before anything is staged.
  buildNative: buildNativeStep,
  // 4. The packed MCP server is installed from its tarball, started over stdio and made to score
  //    with the native CLI just built: the exact bytes that will be published must work.
  smokeMcp: smokeMcpStep,
  // 4b. The MCP server's versions agree: package.json in the tarball, the serverInfo.version it
  //     reported, server.json and mcpName. A server that misreports its version never ships.
  mcpConsistency: mcpConsistencyStep,
  // 5. The golden-score gate: Netflix's reference scores, computed by the native CLI this release
  //    built and by the packed MCP server, must match to Netflix's own places before anything
  //    is signed, tagged or published. A failing gate leaves nothing public.
  gateGolden: gateGoldenStep,
  // 6. SBOMs (SPDX 2.3 and CycloneDX 1.6): the npm dependency tree as the tarballs install it, the
  //    native build (options, compiler, linked libraries), every model file and every release file
  //    with its digests. Written before verify.sh and the checksums, so they are listed and signed.
  sbom: sbomStep,
  // 7. verify.sh: the consumer's check with only gh and cosign, with this release's exact
  //    identity. It is a release file itself, so it comes before the checksums and is signed.
  verifyScript: verifyScriptStep,
  // 8. Checksums come after every file exists and before anything signs or uploads them.
  checksums: checksumsStep,
  // 9. Every release file, SHA256SUMS included, gets a keyless Sigstore bundle. Signing comes
  //    after the checksums so that the checksum file is signed too, and before anything is
  //    uploaded or published, so that nothing public is ever unsigned.
  sign: signStep,
  // 10. SLSA v1 provenance for every release file, and npm's own shape for the tarballs, each a
  //    DSSE-signed in-toto statement. It needs every file signed first (it refuses otherwise) and
  //    the job's token to name the planned commit.
  provenance: provenanceStep,
  // 11. The gate's result as a signed in-toto statement whose subjects are the scored native
  //     artifacts and server tarball: a consumer can check that these bytes passed the goldens.
  attestGate: goldenAttestationStep,
  // 12. The release folder is verified as a consumer would verify it, from the files alone,
  //    before anything is uploaded or published.
  verify: verifyReleaseStep,

  // Publishing. Until the tag is pushed and the release undrafted, nothing a consumer sees has
  // changed except the npm versions, and those are published only after the draft verified.
  // Every publish step is idempotent: it reads the remote state first, so a re-run (or
  // `mcp-release resume`) finishes a release without duplicating anything. See docs/publishing.md.

  // 13. A draft GitHub release with every release file. A draft is invisible to consumers; an
  //     asset already there with the same digest is skipped, a different one is an error.
  releaseDraft: releaseDraftStep,
  // 14. The draft is downloaded through the API and verified exactly as a consumer verifies a
  //     release: the bytes that will be published, not the local folder.
  verifyDraft: verifyDraftStep,
  // 15. npm publish through OIDC trusted publishing, after our own exchange preflight; the exact
  //     version is checked first (same integrity: skip; different: stop).
  publishNpm: publishNpmStep,
  // 16. The registry must serve every exact version with the published integrity before the tag
  //     exists: a tag never names a version consumers cannot install.
  waitRegistry: waitRegistryStep,
  // 17. The annotated tag on the planned commit, only now: never before the tests and gates
  //     (the tag-before-tests incident), and only on a commit of the default branch.
  pushTag: pushTagStep,
  // 18. Undraft last. With immutable releases every asset is already up.
  undraft: undraftStep,
  // 19. What consumers now see, checked as they check it: the public release downloaded by its
  //     tag and verified, and every npm version served with the tarball's integrity.
  verifyPublished: verifyPublishedStep,
} satisfies Record<string, Step<ReleaseOptions>>;

/** `mcp-release build`: the build steps, no checksums. */
export const buildPipeline: ReadonlyArray<Step<ReleaseOptions>> = [releaseSteps.plan, releaseSteps.buildNpm, releaseSteps.buildNative];

/** `mcp-release checksums`: checksum an already built release folder. */
export const checksumsPipeline: ReadonlyArray<Step<ReleaseOptions>> = [releaseSteps.checksums];

/** Everything up to a verified, signed release folder: nothing public happens here. */
export const attestedPipeline: ReadonlyArray<Step<ReleaseOptions>> = [
  releaseSteps.plan,
  releaseSteps.buildNpm,
  releaseSteps.buildNative,
  releaseSteps.smokeMcp,
  releaseSteps.mcpConsistency,
  releaseSteps.gateGolden,
  releaseSteps.sbom,
  releaseSteps.verifyScript,
  releaseSteps.checksums,
  releaseSteps.sign,
  releaseSteps.provenance,
  releaseSteps.attestGate,
  releaseSteps.verify,
];

/** The public half, in its safe order: draft, verify the draft, npm, wait, tag, undraft. */
export const publishPipeline: ReadonlyArray<Step<ReleaseOptions>> = [
  releaseSteps.releaseDraft,
  releaseSteps.verifyDraft,
  releaseSteps.publishNpm,
  releaseSteps.waitRegistry,
  releaseSteps.pushTag,
  releaseSteps.undraft,
  releaseSteps.verifyPublished,
];

/** The whole release, in order (`mcp-release release`, `resume`, and the rehearsal against the lab). */
export const releasePipeline: ReadonlyArray<Step<ReleaseOptions>> = [...attestedPipeline, ...publishPipeline];

/** `mcp-release rehearse`: the whole release, offline, against the lab. */
export const rehearsalPipeline: ReadonlyArray<Step<ReleaseOptions>> = releasePipeline;

/** One pipeline per step, for the per-step actions and commands (a workflow job runs one). */
export const pipelines = {
  plan: [releaseSteps.plan],
  'build-npm': [releaseSteps.buildNpm],
  'build-native': [releaseSteps.buildNative],
  'smoke-mcp': [releaseSteps.smokeMcp],
  'mcp-consistency': [releaseSteps.mcpConsistency],
  build: buildPipeline,
  checksums: checksumsPipeline,
  'gate-golden': [releaseSteps.gateGolden],
  sbom: [releaseSteps.sbom],
  'verify-script': [releaseSteps.verifyScript],
  sign: [releaseSteps.sign],
  provenance: [releaseSteps.provenance],
  'attest-gate': [releaseSteps.attestGate],
  verify: [releaseSteps.verify],
  'release-draft': [releaseSteps.releaseDraft],
  'verify-draft': [releaseSteps.verifyDraft],
  'wait-registry': [releaseSteps.waitRegistry],
  'push-tag': [releaseSteps.pushTag],
  undraft: [releaseSteps.undraft, releaseSteps.verifyPublished],
  'verify-published': [releaseSteps.verifyPublished],
  'release-github': [releaseSteps.releaseDraft, releaseSteps.verifyDraft],
  'publish-npm': [releaseSteps.publishNpm, releaseSteps.waitRegistry],
  /** A workflow's publish job: the public half over an attested release folder. */
  publish: publishPipeline,
  release: releasePipeline,
  rehearse: rehearsalPipeline,
} as const satisfies Record<string, ReadonlyArray<Step<ReleaseOptions>>>;
export type PipelineName = keyof typeof pipelines;

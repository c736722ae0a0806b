/**
 * What the hostile release tests share: the lab's OIDC token service and Sigstore, the job
 * environment that points the signing steps at them, and a build step that puts given files into
 * the release folder as the build steps would.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactKind } from '@mcp-release/manifest';
import { OidcService, startSigstore, type SigstoreLab } from '@mcp-release/lab';
import type { Step } from '@mcp-release/pipeline';
import type { ReleaseOptions } from '../../packages/steps/src/options.js';
import { TEST_PLAN } from '../helpers/context.js';
import type { Policy } from '../../packages/steps/src/policy.js';

export interface ReleaseLab {
  oidc: OidcService;
  sigstore: SigstoreLab;
  /** The job's environment: ID token request, Fulcio, Rekor, TSA, and the trusted root of the lab. */
  env: NodeJS.ProcessEnv;
  /** A policy whose signer is the lab's default workflow identity. */
  policy: Policy;
  stop(): Promise<void>;
}

/** Starts the lab's OIDC service and Sigstore; `dir` receives the trusted root file. The job runs at the test plan's commit. */
export async function startReleaseLab(dir: string): Promise<ReleaseLab> {
  const oidc = new OidcService({ sha: TEST_PLAN.commit });
  await oidc.start();
  const sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks` });
  const trustedRoot = path.join(dir, 'trusted_root.json');
  await sigstore.writeTrustedRoot(trustedRoot);
  return {
    oidc,
    sigstore,
    env: {
      ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken,
      MCP_RELEASE_FULCIO_URL: sigstore.urls.fulcio,
      MCP_RELEASE_REKOR_URL: sigstore.urls.rekor,
      MCP_RELEASE_TSA_URL: sigstore.urls.tsa,
      MCP_RELEASE_TRUSTED_ROOT: trustedRoot,
    },
    policy: {
      version: 1,
      packages: [{ path: '.' }],
      signer: { repository: oidc.claims.repository, workflow: 'release.yml', ref: oidc.claims.ref, issuer: oidc.issuer },
    },
    async stop() {
      await sigstore.stop();
      await oidc.stop();
    },
  };
}

export interface BuiltFile {
  name: string;
  content: string | Buffer;
  kind?: ArtifactKind;
  meta?: Record<string, unknown>;
}

/** A build step (recorded as build-npm) that writes the files into the release folder and records them. */
export function buildFiles(files: BuiltFile[]): Step<ReleaseOptions> {
  return {
    name: 'build-npm',
    description: 'test release files',
    async run(ctx) {
      for (const f of files) {
        await writeFile(path.join(ctx.releaseDir, f.name), f.content);
        await ctx.addArtifact(f.name, f.kind ?? 'native-library', 'any', f.meta);
      }
    },
  };
}

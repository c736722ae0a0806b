import { createHash, createSign, generateKeyPairSync, sign as signData, type KeyObject } from 'node:crypto';
import { bundleToJSON, toMessageSignatureBundle, type Bundle, type SerializedBundle } from '@sigstore/bundle';
import {
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  DSSEBundleBuilder,
  FulcioSigner,
  RekorWitness,
  TSAWitness,
  type IdentityProvider,
  type Signature,
  type Signer,
  type Witness,
} from '@sigstore/sign';
import { fileChunks, readError } from '@mcp-release/manifest';
import { StepError } from '../errors.js';

/** Where signing goes: the public Sigstore by default, the lab (or a private instance) by environment. */
export interface SigstoreEndpoints {
  fulcio: string;
  rekor: string;
  /** An RFC 3161 timestamp authority; bundles get a signed timestamp when set. */
  tsa?: string;
}

export function endpointsFromEnv(env: NodeJS.ProcessEnv): SigstoreEndpoints {
  return {
    fulcio: env.MCP_RELEASE_FULCIO_URL || DEFAULT_FULCIO_URL,
    rekor: env.MCP_RELEASE_REKOR_URL || DEFAULT_REKOR_URL,
    ...(env.MCP_RELEASE_TSA_URL ? { tsa: env.MCP_RELEASE_TSA_URL } : {}),
  };
}

/** Bounded retries for the Sigstore services: 5xx and network errors, never 4xx. */
export const SIGSTORE_RETRY = { retries: 3, factor: 2, minTimeout: 250, maxTimeout: 2000 };

/**
 * The job's identity: a GitHub Actions OIDC token for audience `sigstore`, fetched the way
 * @actions/core does (ACTIONS_ID_TOKEN_REQUEST_URL + `&audience=`, bearer request token).
 */
export function githubIdentity(env: NodeJS.ProcessEnv, audience = 'sigstore'): IdentityProvider {
  return {
    async getToken() {
      const url = env.ACTIONS_ID_TOKEN_REQUEST_URL;
      const token = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
      if (!url || !token) {
        throw new StepError('OIDC_TOKEN_UNAVAILABLE', 'this job has no OIDC token to sign with (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)', {
          hint: 'give the signing job `permissions: id-token: write` in the workflow (and keep `contents: read`); outside GitHub, run against the lab (mcp-release lab start, then its export lines)',
        });
      }
      let lastError: unknown;
      for (let attempt = 0; attempt <= SIGSTORE_RETRY.retries; attempt += 1) {
        if (attempt) await new Promise((r) => setTimeout(r, Math.min(SIGSTORE_RETRY.minTimeout * SIGSTORE_RETRY.factor ** (attempt - 1), SIGSTORE_RETRY.maxTimeout)));
        let res: Response;
        try {
          res = await fetch(`${url}${url.includes('?') ? '&' : '?'}audience=${encodeURIComponent(audience)}`, {
            headers: { authorization: `Bearer ${token}`, accept: 'application/json; api-version=2.0' },
            signal: AbortSignal.timeout(30_000),
          });
        } catch (err) {
          lastError = err;
          continue;
        }
        if (res.status >= 500) {
          lastError = new Error(`HTTP ${res.status}`);
          continue;
        }
        if (!res.ok) {
          throw new StepError('OIDC_TOKEN_REFUSED', `the OIDC token service refused the request (HTTP ${res.status}: ${(await res.text()).slice(0, 200)})`, {
            hint: 'the job needs `permissions: id-token: write`; a token request outside that job, or a stale request token, is refused',
          });
        }
        const body = (await res.json()) as { value?: string };
        if (!body.value) throw new StepError('OIDC_TOKEN_REFUSED', 'the OIDC token service answered without a token', { hint: 'check ACTIONS_ID_TOKEN_REQUEST_URL' });
        return body.value;
      }
      throw new StepError('OIDC_TOKEN_FAILED', `could not get an OIDC token after ${SIGSTORE_RETRY.retries + 1} attempts: ${(lastError as Error)?.message}`, {
        hint: 'the token service is failing; re-run the job (mcp-release resume continues where it stopped)',
        cause: lastError,
      });
    },
  };
}

/** The ephemeral key that Fulcio certifies; it also proves possession of itself. */
class EphemeralKey implements Signer {
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
  constructor() {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    this.publicKeyPem = pair.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }
  async sign(data: Buffer): Promise<Signature> {
    return { signature: signData('sha256', data, this.privateKey), key: { $case: 'publicKey', publicKey: this.publicKeyPem } };
  }
}

/** A signer that already holds its certificate: used for DSSE statements. */
class CertifiedSigner implements Signer {
  constructor(
    private readonly key: EphemeralKey,
    private readonly certificatePem: string,
  ) {}
  async sign(data: Buffer): Promise<Signature> {
    return { signature: signData('sha256', data, this.key.privateKey), key: { $case: 'x509Certificate', certificate: this.certificatePem } };
  }
}

export interface SignedFile {
  bundle: SerializedBundle;
  sha256: string;
  size: number;
}

/**
 * Keyless signing for a whole release: one ephemeral key, one short-lived Fulcio certificate for
 * the job's identity (renewed when it nears expiry), then each file is hashed and signed in one
 * streamed pass, logged in Rekor and timestamped. Bundles are v0.3 with a single certificate.
 */
export class ReleaseSigner {
  private key = new EphemeralKey();
  private certificatePem = '';
  private certificateDer = Buffer.alloc(0);
  private notAfter = 0;

  constructor(
    private readonly endpoints: SigstoreEndpoints,
    private readonly identity: IdentityProvider,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private witnesses(entryType?: 'dsse'): Witness[] {
    const list: Witness[] = [new RekorWitness({ rekorBaseURL: this.endpoints.rekor, retry: SIGSTORE_RETRY, timeout: 30_000, ...(entryType ? { entryType } : {}) })];
    if (this.endpoints.tsa) list.push(new TSAWitness({ tsaBaseURL: this.endpoints.tsa, retry: SIGSTORE_RETRY, timeout: 30_000 }));
    return list;
  }

  private pending: Promise<string> | undefined;

  /**
   * Gets (or renews, two minutes before expiry) the signing certificate. Concurrent callers share
   * one request: two certificates for two keys would leave bundles whose signature, certificate
   * and log entry do not belong together.
   */
  async certificate(): Promise<string> {
    if (this.certificatePem && this.now().getTime() < this.notAfter - 120_000) return this.certificatePem;
    this.pending ??= this.renewCertificate().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async renewCertificate(): Promise<string> {
    const key = new EphemeralKey();
    const fulcio = new FulcioSigner({ fulcioBaseURL: this.endpoints.fulcio, identityProvider: this.identity, keyHolder: key, retry: SIGSTORE_RETRY, timeout: 30_000 });
    let signature: Signature;
    try {
      signature = await fulcio.sign(Buffer.alloc(0));
    } catch (err) {
      if (err instanceof StepError) throw err;
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof StepError) throw cause;
      throw new StepError('SIGSTORE_CERTIFICATE_FAILED', `Fulcio (${this.endpoints.fulcio}) issued no signing certificate: ${(err as Error).message}`, {
        hint: 'check the job identity (its OIDC token) and that Fulcio is reachable; a re-run continues from this step',
        cause: err,
      });
    }
    if (signature.key.$case !== 'x509Certificate') throw new StepError('SIGSTORE_CERTIFICATE_FAILED', 'Fulcio answered without a certificate', { hint: 'check MCP_RELEASE_FULCIO_URL' });
    // The key and its certificate change together, once the certificate is in hand.
    this.key = key;
    this.certificatePem = signature.key.certificate;
    this.certificateDer = Buffer.from(this.certificatePem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
    const { X509Certificate } = await import('node:crypto');
    this.notAfter = Date.parse(new X509Certificate(this.certificateDer).validTo);
    return this.certificatePem;
  }

  private async witness(bundle: Bundle, certificatePem: string, entryType?: 'dsse'): Promise<Bundle> {
    const results = await Promise.all(this.witnesses(entryType).map((w) => w.testify(bundle.content, certificatePem)));
    bundle.verificationMaterial.tlogEntries = results.flatMap((r) => r.tlogEntries ?? []);
    bundle.verificationMaterial.timestampVerificationData = { rfc3161Timestamps: results.flatMap((r) => r.rfc3161Timestamps ?? []) };
    return bundle;
  }

  /** Signs a file by streaming it once through sha256 and the signature. */
  async signFile(file: string): Promise<SignedFile> {
    await this.certificate();
    const { key, certificatePem, certificateDer } = this;
    const hash = createHash('sha256');
    const signer = createSign('sha256');
    let size = 0;
    try {
      for await (const chunk of fileChunks(file)) {
        hash.update(chunk);
        signer.update(chunk);
        size += chunk.length;
      }
    } catch (err) {
      throw readError(file, err);
    }
    const digest = hash.digest();
    const signature = signer.sign(key.privateKey);
    const bundle = toMessageSignatureBundle({ digest, signature, certificate: certificateDer, certificateChain: false });
    try {
      await this.witness(bundle, certificatePem);
    } catch (err) {
      throw witnessError(err, this.endpoints);
    }
    return { bundle: bundleToJSON(bundle), sha256: digest.toString('hex'), size };
  }

  /** DSSE-signs an in-toto statement (small, in memory) into a bundle. */
  async signStatement(statement: unknown): Promise<SerializedBundle> {
    await this.certificate();
    const builder = new DSSEBundleBuilder({ signer: new CertifiedSigner(this.key, this.certificatePem), witnesses: this.witnesses('dsse'), certificateChain: false });
    try {
      const bundle = await builder.create({ data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' });
      return bundleToJSON(bundle);
    } catch (err) {
      throw witnessError(err, this.endpoints);
    }
  }
}

function witnessError(err: unknown, endpoints: SigstoreEndpoints): StepError {
  const code = (err as { code?: string }).code ?? '';
  const where = code.startsWith('TSA') ? `the timestamp authority (${endpoints.tsa})` : `Rekor (${endpoints.rekor})`;
  return new StepError('SIGSTORE_WITNESS_FAILED', `${where} did not accept the signature: ${(err as Error).message}`, {
    hint: 'the service is failing or unreachable and signing already retried it; re-run the release (mcp-release resume) once it answers',
    cause: err,
  });
}

/** Runs tasks with at most `limit` at a time, in order of the input; the first failure wins. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      results[i] = await fn(items[i] as T, i);
    }
  });
  await Promise.all(workers);
  return results;
}

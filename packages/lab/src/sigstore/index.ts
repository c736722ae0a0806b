import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LabError } from '../errors.js';
import { LabService } from '../harness.js';
import { Fulcio } from './fulcio.js';
import { loadMaterial } from './pki.js';
import { Rekor } from './rekor.js';
import { buildSigningConfig, buildTrustedRoot } from './trust.js';
import { TimestampAuthority } from './tsa.js';
import { TufRepository } from './tuf.js';

export { toBundleV03 } from './bundle.js';
export { FULCIO_AUDIENCE, FULCIO_MESSAGES } from './fulcio.js';
export { SIGNING_CONFIG_MEDIA_TYPE, TRUSTED_ROOT_MEDIA_TYPE } from './trust.js';

/**
 * An offline Sigstore: Fulcio (with an embedded CT log), Rekor, a timestamp authority and a TUF
 * mirror that serves the matching trusted root. Keys, certificates, the Rekor log, the TUF
 * metadata and the ports live in `stateDir` when one is given, so a restarted lab serves the
 * same trusted root and bundles signed before the restart still verify.
 */

export interface SigstoreLabOptions {
  /** The OIDC issuer Fulcio accepts tokens from (the `iss` claim). */
  oidcIssuer: string;
  /** Where that issuer's signing keys are published. */
  jwksUri: string;
  stateDir?: string;
  /** The lab's notion of now (certificates, log times, timestamps, token expiry). */
  clock?: () => Date;
}

export interface SigstoreLab {
  fulcio: LabService;
  rekor: LabService;
  tsa: LabService;
  tuf: LabService;
  urls: { fulcio: string; rekor: string; tsa: string; tufMirror: string };
  /** The trusted_root.json object (protobuf-specs JSON, application/vnd.dev.sigstore.trustedroot+json;version=0.1). */
  trustedRoot: Record<string, unknown>;
  /** The signing config (v0.2) naming the lab's services, also a target of the TUF mirror. */
  signingConfig: Record<string, unknown>;
  writeTrustedRoot(file: string): Promise<void>;
  /** Writes the TUF root.json a client must start from (sigstore's `tufRootPath`). */
  tufRootFile(file: string): Promise<void>;
  stop(): Promise<void>;
}

type ServiceName = 'fulcio' | 'rekor' | 'tsa' | 'tuf';
const SERVICES: ServiceName[] = ['fulcio', 'rekor', 'tsa', 'tuf'];

const portsFile = (stateDir: string): string => path.join(stateDir, 'sigstore', 'ports.json');

async function readPorts(stateDir: string | undefined): Promise<Partial<Record<ServiceName, number>>> {
  if (!stateDir) return {};
  try {
    return JSON.parse(await readFile(portsFile(stateDir), 'utf8')) as Partial<Record<ServiceName, number>>;
  } catch {
    return {};
  }
}

function checkUrl(value: string, option: string): void {
  try {
    new URL(value);
  } catch (err) {
    throw new LabError('LAB_SIGSTORE_OPTIONS', `${option} ${JSON.stringify(value)} is not a URL`, { cause: err, hint: `pass the OIDC service's ${option === 'oidcIssuer' ? 'issuer (oidc.issuer)' : 'JWKS URL (`${oidc.issuer}/.well-known/jwks`)'}` });
  }
}

const serialize = (value: Record<string, unknown>): Buffer => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);

async function writeOut(file: string, data: Buffer, what: string): Promise<void> {
  try {
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await writeFile(file, data);
  } catch (err) {
    throw new LabError('LAB_SIGSTORE_WRITE', `cannot write the ${what} to ${file}`, { cause: err, hint: 'choose a writable path' });
  }
}

export async function startSigstore(options: SigstoreLabOptions): Promise<SigstoreLab> {
  checkUrl(options.oidcIssuer, 'oidcIssuer');
  checkUrl(options.jwksUri, 'jwksUri');
  const clock = options.clock ?? ((): Date => new Date());
  const { stateDir } = options;
  const material = await loadMaterial(stateDir, clock());

  const services: Record<ServiceName, LabService> = {
    fulcio: new LabService({ name: 'fulcio' }),
    rekor: new LabService({ name: 'rekor' }),
    tsa: new LabService({ name: 'tsa' }),
    tuf: new LabService({ name: 'tuf' }),
  };
  new Fulcio({ material, oidcIssuer: options.oidcIssuer, jwksUri: options.jwksUri, clock }).routes(services.fulcio);
  const rekor = new Rekor({ material, clock, ...(stateDir ? { stateDir } : {}) });
  await rekor.load();
  rekor.routes(services.rekor);
  new TimestampAuthority({ material, clock }).routes(services.tsa);
  const tuf = new TufRepository({ material, clock, ...(stateDir ? { stateDir } : {}) });
  tuf.routes(services.tuf);

  // With a state folder the services come back on the ports they had: the URLs are part of the
  // trusted root (and Rekor's checkpoints name its host), so they must not move.
  const ports = await readPorts(stateDir);
  const started: LabService[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.map((s) => s.stop()));
  };
  try {
    for (const name of SERVICES) {
      const port = ports[name] ?? 0;
      try {
        await services[name].start(port);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new LabError('LAB_SIGSTORE_PORT_IN_USE', `the lab ${name} cannot listen on 127.0.0.1:${port}, where it ran before: the port is in use`, {
            cause: err,
            hint: `stop whatever holds port ${port} (another lab on the same state folder?), or delete ${stateDir ? portsFile(stateDir) : 'the ports file'} to take new ports; the trusted root then changes`,
          });
        }
        throw err;
      }
      started.push(services[name]);
    }
    if (stateDir) {
      const now = Object.fromEntries(SERVICES.map((n) => [n, services[n].port]));
      if (JSON.stringify(now) !== JSON.stringify(ports)) {
        await mkdir(path.dirname(portsFile(stateDir)), { recursive: true });
        await writeFile(portsFile(stateDir), `${JSON.stringify(now)}\n`);
      }
    }

    const urls = { fulcio: services.fulcio.url, rekor: services.rekor.url, tsa: services.tsa.url, tufMirror: services.tuf.url };
    const trustedRoot = buildTrustedRoot(material, urls);
    const signingConfig = buildSigningConfig(material, { ...urls, oidcIssuer: options.oidcIssuer });
    await tuf.publish({ 'trusted_root.json': serialize(trustedRoot), 'signing_config.v0.2.json': serialize(signingConfig) });

    return {
      ...services,
      urls,
      trustedRoot,
      signingConfig,
      writeTrustedRoot: (file) => writeOut(file, serialize(trustedRoot), 'trusted root'),
      tufRootFile: (file) => writeOut(file, tuf.initialRoot, 'TUF root'),
      stop: async () => {
        await stopAll();
        await rekor.flush();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

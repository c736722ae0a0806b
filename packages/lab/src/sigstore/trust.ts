import { LAB_ORGANIZATION, type Material, type SigningKey } from './pki.js';

/**
 * The lab's trusted_root.json (protobuf-specs JSON, media type
 * `application/vnd.dev.sigstore.trustedroot+json;version=0.1`) and its signing config
 * (`application/vnd.dev.sigstore.signingconfig.v0.2+json`), laid out as the public-good ones.
 * Everything in them comes from persisted material and the services' URLs, so they are
 * byte-identical across restarts with the same state folder.
 */

export const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';
export const SIGNING_CONFIG_MEDIA_TYPE = 'application/vnd.dev.sigstore.signingconfig.v0.2+json';

export interface ServiceUrls {
  fulcio: string;
  rekor: string;
  tsa: string;
}

const b64 = (b: Buffer): string => b.toString('base64');

function log(baseUrl: string, key: SigningKey, start: string): Record<string, unknown> {
  return {
    baseUrl,
    hashAlgorithm: 'SHA2_256',
    publicKey: { rawBytes: b64(key.spki), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
    logId: { keyId: b64(key.keyId) },
  };
}

export function buildTrustedRoot(material: Material, urls: ServiceUrls): Record<string, unknown> {
  const start = material.validFrom.toISOString();
  return {
    mediaType: TRUSTED_ROOT_MEDIA_TYPE,
    tlogs: [log(urls.rekor, material.rekor, start)],
    certificateAuthorities: [
      {
        subject: { organization: LAB_ORGANIZATION, commonName: 'lab-fulcio-root' },
        uri: urls.fulcio,
        certChain: { certificates: [{ rawBytes: b64(material.fulcio.intermediate) }, { rawBytes: b64(material.fulcio.root) }] },
        validFor: { start },
      },
    ],
    // The CT log lives inside the lab's Fulcio (it has no API of its own).
    ctlogs: [log(`${urls.fulcio}/ct`, material.ctlog, start)],
    timestampAuthorities: [
      {
        subject: { organization: LAB_ORGANIZATION, commonName: 'lab-tsa-root' },
        uri: `${urls.tsa}/api/v1/timestamp`,
        certChain: { certificates: [{ rawBytes: b64(material.tsa.signer) }, { rawBytes: b64(material.tsa.root) }] },
        validFor: { start },
      },
    ],
  };
}

export function buildSigningConfig(material: Material, urls: ServiceUrls & { oidcIssuer: string }): Record<string, unknown> {
  const service = (url: string): Record<string, unknown> => ({ url, majorApiVersion: 1, validFor: { start: material.validFrom.toISOString() }, operator: LAB_ORGANIZATION });
  return {
    mediaType: SIGNING_CONFIG_MEDIA_TYPE,
    caUrls: [service(urls.fulcio)],
    oidcUrls: [service(urls.oidcIssuer)],
    rekorTlogUrls: [service(urls.rekor)],
    tsaUrls: [service(`${urls.tsa}/api/v1/timestamp`)],
    rekorTlogConfig: { selector: 'ANY' },
    tsaConfig: { selector: 'ANY' },
  };
}

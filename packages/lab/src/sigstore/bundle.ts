import { BUNDLE_V03_MEDIA_TYPE, type SerializedBundle } from '@sigstore/bundle';
import { LabError } from '../errors.js';

/**
 * Turns a serialized v0.1/v0.2 bundle with an X.509 chain (as @sigstore/sign writes message
 * signatures) into a v0.3 bundle with a single `certificate`. Only the wrapper changes: the leaf
 * moves from `x509CertificateChain.certificates[0]` to `certificate`, the rest of the chain (the
 * CA certificates, which verifiers take from the trusted root) is dropped, and the media type
 * becomes `application/vnd.dev.sigstore.bundle.v0.3+json`. Nothing signed is touched.
 */
export function toBundleV03(bundle: SerializedBundle): SerializedBundle {
  const material = bundle.verificationMaterial as Record<string, unknown> & SerializedBundle['verificationMaterial'];
  const { x509CertificateChain, ...rest } = material as { x509CertificateChain?: { certificates: Array<{ rawBytes: string }> } } & Record<string, unknown>;
  if (x509CertificateChain === undefined) {
    if ('certificate' in material || 'publicKey' in material) return { ...bundle, mediaType: BUNDLE_V03_MEDIA_TYPE };
    throw new LabError('LAB_BUNDLE_NO_KEY_MATERIAL', 'the bundle has neither an X.509 chain, a certificate nor a public key', { hint: 'pass a bundle written by @sigstore/sign (bundleToJSON)' });
  }
  const leaf = x509CertificateChain.certificates[0];
  if (!leaf) throw new LabError('LAB_BUNDLE_EMPTY_CHAIN', 'the bundle’s x509CertificateChain has no certificates', { hint: 'sign again; a Fulcio-backed bundle always carries the signing certificate' });
  for (const entry of bundle.verificationMaterial.tlogEntries) {
    if (!entry.inclusionProof) {
      throw new LabError('LAB_BUNDLE_NO_INCLUSION_PROOF', `tlog entry ${entry.logIndex} has no inclusion proof, which v0.3 requires`, { hint: 'use a Rekor that returns inclusion proofs (the lab Rekor does), or keep the bundle at its version' });
    }
  }
  return { ...bundle, mediaType: BUNDLE_V03_MEDIA_TYPE, verificationMaterial: { ...rest, certificate: { rawBytes: leaf.rawBytes } } as unknown as SerializedBundle['verificationMaterial'] };
}

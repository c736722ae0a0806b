import parseSpdxExpression, { type ConjunctionNode, type LicenseNode } from 'spdx-expression-parse';

/** A license as the SBOM records it: a valid SPDX expression, or none (NOASSERTION) and why. */
export type LicenseVerdict = { expression: string } | { expression: undefined; reason: string };

function licenseIds(node: LicenseNode | ConjunctionNode): string[] {
  return 'conjunction' in node ? [...licenseIds(node.left), ...licenseIds(node.right)] : [node.license];
}

/**
 * Reads the `license` of a package.json or lockfile entry. Only a valid SPDX expression over the
 * SPDX license list is kept; anything else (missing, "SEE LICENSE IN …", a LicenseRef the SBOM
 * cannot carry the text of, the old object form with an invalid type) becomes NOASSERTION with
 * the reason, so that nothing is ever guessed.
 */
export function spdxLicense(raw: unknown): LicenseVerdict {
  let text: unknown = raw;
  if (text && typeof text === 'object' && !Array.isArray(text) && typeof (text as { type?: unknown }).type === 'string') text = (text as { type: string }).type;
  if (text === undefined || text === null || text === '') return { expression: undefined, reason: 'declares no license' };
  if (typeof text !== 'string') return { expression: undefined, reason: `declares its license as ${JSON.stringify(raw)}, which is not an SPDX expression` };
  const expression = text.trim();
  let parsed: LicenseNode | ConjunctionNode;
  try {
    parsed = parseSpdxExpression(expression);
  } catch {
    return { expression: undefined, reason: `declares the license ${JSON.stringify(text)}, which is not a valid SPDX license expression` };
  }
  const outside = licenseIds(parsed).filter((id) => id.startsWith('LicenseRef-') || id.startsWith('DocumentRef-'));
  if (outside.length) return { expression: undefined, reason: `declares the license ${JSON.stringify(text)}, which names ${outside.join(', ')} outside the SPDX license list` };
  return { expression };
}

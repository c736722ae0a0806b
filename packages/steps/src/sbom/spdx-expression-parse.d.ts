// Types for the parts of spdx-expression-parse the SBOM step uses (the package ships none).
declare module 'spdx-expression-parse' {
  export interface LicenseNode {
    license: string;
    plus?: boolean;
    exception?: string;
  }
  export interface ConjunctionNode {
    conjunction: 'and' | 'or';
    left: LicenseNode | ConjunctionNode;
    right: LicenseNode | ConjunctionNode;
  }
  /** Parses an SPDX license expression; throws on anything that is not one. */
  export default function parse(source: string): LicenseNode | ConjunctionNode;
}

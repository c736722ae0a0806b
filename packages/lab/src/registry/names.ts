/**
 * Package names as the lab registry sees them: validation, the escaped form npm puts into
 * URLs, and the package a request path is about.
 */

/** The rule npm applies to new package names (lower case, URL-safe, optional scope). */
const NAME_RE = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

export function isValidPackageName(name: string): boolean {
  return name.length > 0 && name.length <= 214 && NAME_RE.test(name);
}

/** The form npm sends in paths: `@scope%2fname` for scoped names, the name itself otherwise. */
export function escapePackageName(name: string): string {
  return name.startsWith('@') ? name.replace('/', '%2f') : name;
}

/** The package URL npm signs in provenance statements: the leading `@` of a scope is encoded. */
export function npmPurl(name: string, version: string): string {
  return `pkg:npm/${name.replace(/^@/, '%40')}@${version}`;
}

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export interface PackagePath {
  /** The package name, decoded (`@scope/name`). */
  name: string;
  /** The path segments after the name (`['-', 'x-1.0.0.tgz']`, `['-rev', '3-abc']`, or none). */
  rest: string[];
}

/**
 * The package a registry path is about: `/name`, `/@scope%2fname`, `/@scope/name`, and anything
 * below them (tarballs, `-rev/…`). Paths under `/-/` (the registry's own endpoints) are about
 * no package and give undefined.
 */
export function packageOfPath(pathname: string): PackagePath | undefined {
  const segments = pathname.split('/').slice(1);
  const first = segments[0];
  if (!first || first.startsWith('-')) return undefined;
  let name = decode(first);
  if (name === undefined) return undefined;
  let next = 1;
  if (name.startsWith('@') && !name.includes('/')) {
    const second = segments[1] ? decode(segments[1]) : undefined;
    if (!second) return undefined;
    name = `${name}/${second}`;
    next = 2;
  }
  return { name, rest: segments.slice(next).filter((s) => s !== '') };
}

/** Splits `name@version` (the attestation path's last part); the scope's `@` is not a separator. */
export function splitSpec(spec: string): { name: string; version: string } | undefined {
  const at = spec.lastIndexOf('@');
  if (at <= 0) return undefined;
  const name = spec.slice(0, at);
  const version = spec.slice(at + 1);
  if (!isValidPackageName(name) || !/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$/.test(version)) return undefined;
  return { name, version };
}

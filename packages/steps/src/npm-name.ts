import validate from 'validate-npm-package-name';

/** Whether a name can be published to npm (npm's own rules, through its validator). */
export default function validateNpmName(name: string): boolean {
  return validate(name).validForNewPackages;
}

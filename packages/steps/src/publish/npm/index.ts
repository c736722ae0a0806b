export * from './registry.js';
export * from './oidc.js';
export * from './cli.js';
export * from './attest.js';
export * from './publish.js';
export * from './wait.js';
export * from './steps.js';

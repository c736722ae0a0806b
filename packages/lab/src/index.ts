export * from './errors.js';
export * from './harness.js';
export * from './state.js';
export * from './oidc.js';
export * from './registry/index.js';
export * from './sigstore/index.js';
export * from './github/index.js';
export * from './lab.js';

export * from './errors.js';
export * from './harness.js';
export * from './state.js';
export * from './oidc.js';

export * from './claims.js';
export * from './statement.js';
export * from './provenance-step.js';
export * from './verify-script.js';

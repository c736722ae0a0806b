export * from './errors.js';
export * from './canonical-json.js';
export * from './paths.js';
export * from './atomic.js';
export * from './hash.js';
export * from './types.js';
export * from './manifest.js';

export * from './table.js';
export * from './logic.js';
export * from './scorers.js';
export * from './backends.js';
export * from './gate.js';

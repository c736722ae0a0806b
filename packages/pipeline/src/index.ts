export * from './errors.js';
export * from './exec.js';
export * from './log.js';
export * from './step.js';
export * from './runner.js';
export * from './summary.js';

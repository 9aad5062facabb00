export { NonRetryableError, isNonRetryableError, type Processor, type ProcessorContext } from './types.js';
export { defaultProcessor } from './default.js';
export { ProcessorRegistry, validateProcessor } from './registry.js';
export { loadProcessors, loadProcessorModule } from './load.js';

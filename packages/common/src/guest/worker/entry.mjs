// Worker entry: registers tsx's loader (the worker does not inherit the parent's registration
// when the parent registered it through the API), then starts the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./guestWorkerMain.ts');

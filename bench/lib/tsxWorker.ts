import { Worker } from 'node:worker_threads'

/**
 * A worker thread running the TypeScript module at `moduleUrl`. The benches run under tsx, whose
 * loader a thread does not inherit on Node 20: the thread registers it before it loads the module.
 */
export function tsxWorker(moduleUrl: URL, workerData: unknown): Worker {
  return new Worker(
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(moduleUrl.href)}) })`,
    { eval: true, workerData },
  )
}

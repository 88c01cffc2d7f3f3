// Fuzz targets, run by hand (not in CI): `npm run fuzz -- TARGET [--runs N] [--seed N]`.
// Each target exports `fuzz(opts)` that runs N generated inputs, prints what it
// found, and writes each finding as a fixture under test/fixtures/fuzz/TARGET/
// (replayed by `npm test`). Exit code 1 when a target found something.
import { performance } from 'node:perf_hooks';

export interface FuzzOptions {
  runs: number;
  seed: number;
}
export interface FuzzResult {
  inputs: number;
  findings: string[];
}

const TARGETS: Record<string, () => Promise<{ fuzz(o: FuzzOptions): Promise<FuzzResult> | FuzzResult }>> = {
  list: () => import('./list.ts'),
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const names = args.filter((a, i) => !a.startsWith('--') && !(args[i - 1] ?? '').startsWith('--'));
  const flag = (n: string, d: number) => {
    const i = args.indexOf(`--${n}`);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const opts: FuzzOptions = { runs: flag('runs', 1_000_000), seed: flag('seed', Date.now() % 1_000_000) };
  const chosen = names.length ? names : Object.keys(TARGETS);
  let failed = false;
  for (const name of chosen) {
    const load = TARGETS[name];
    if (!load) {
      console.error(`unknown fuzz target ${name}; targets: ${Object.keys(TARGETS).join(', ')}`);
      process.exit(2);
    }
    const t0 = performance.now();
    const r = await (await load()).fuzz(opts);
    const s = (performance.now() - t0) / 1000;
    console.log(`fuzz ${name}: ${r.inputs} inputs, seed ${opts.seed}, ${s.toFixed(1)} s, ${r.findings.length} findings`);
    for (const f of r.findings) console.log(`  finding: ${f}`);
    failed ||= r.findings.length > 0;
  }
  process.exit(failed ? 1 : 0);
}

void main();

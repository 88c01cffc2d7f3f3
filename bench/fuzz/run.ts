// `npm run fuzz -- <target> [--runs N] [--seed S] [--save K]`: runs one fuzz
// target (bench/fuzz/<target>.ts, default export a FuzzTarget) for N inputs
// (default 1,000,000). `npm run fuzz -- --list` names the targets. Adding a
// target is adding one file here. Not part of CI: `npm test` only replays the
// kept cases (test/fuzz/replay.test.ts).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Mutator, SLOW_INPUT_MS, hashOf, prng, type FuzzTarget } from './lib/fuzz.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.resolve(HERE, '../../test/fixtures/fuzz');
/** Inputs kept in the mutation pool; beyond it a random one is replaced. */
const MAX_POOL = 4000;

export function targetNames(): string[] {
  return readdirSync(HERE).filter((f) => f.endsWith('.ts') && f !== 'run.ts').map((f) => f.slice(0, -3)).sort();
}

/**
 * A target that drives itself (list.ts: a generator checked against a
 * reference matcher) instead of the mutator below: `fuzz(opts)` runs the
 * inputs and reports; its fixtures are replayed by its own test.
 */
export interface FuzzOptions {
  runs: number;
  seed: number;
}
export interface FuzzResult {
  inputs: number;
  findings: string[];
}
type TargetModule = { default?: FuzzTarget; fuzz?: (o: FuzzOptions) => Promise<FuzzResult> | FuzzResult };

async function loadModule(name: string): Promise<TargetModule> {
  if (!/^[a-z0-9-]+$/.test(name) || !targetNames().includes(name)) throw new Error(`unknown fuzz target ${JSON.stringify(name)}; targets: ${targetNames().join(', ')}`);
  return (await import(`./${name}.ts`)) as TargetModule;
}

/** A mutation target (default export), or null for a self-driving one. */
export async function loadTarget(name: string): Promise<FuzzTarget | null> {
  return (await loadModule(name)).default ?? null;
}

/** The kept cases of a target (fixtures), as [file name, bytes]. */
export function keptCases(name: string): [string, Buffer][] {
  const dir = path.join(FIXTURES, name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.bin')).sort().map((f) => [f, readFileSync(path.join(dir, f))]);
}

interface Finding { kind: 'crash' | 'slow'; message: string; input: Buffer; ms: number }

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.length === 0 || argv[0] === '--list' || argv[0] === '--help') {
    console.log(`usage: npm run fuzz -- <target> [--runs N] [--seed S] [--save K]\ntargets: ${targetNames().join(', ')}`);
    return;
  }
  const name = argv[0]!;
  const opt = (flag: string, dflt: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const n = Number(argv[i + 1]);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag} needs a whole number`);
    return n;
  };
  const runs = opt('--runs', 1_000_000);
  const seed = opt('--seed', Date.now() % 2 ** 31);
  const save = opt('--save', 40);
  const mod = await loadModule(name);
  if (!mod.default && mod.fuzz) {
    const t = performance.now();
    const res = await mod.fuzz({ runs, seed });
    console.log(`fuzz ${name}: ${res.inputs} inputs, seed ${seed}, ${((performance.now() - t) / 1000).toFixed(1)} s, ${res.findings.length} findings`);
    for (const f of res.findings) console.log(`  finding: ${f}`);
    if (res.findings.length) process.exitCode = 1;
    return;
  }
  const target = mod.default!;
  await target.init?.();
  const r = prng(seed);
  const dict = target.dictionary.map((t) => Buffer.from(t, 'latin1'));
  const mut = new Mutator(r, dict, target.maxInputBytes);
  const pool: Buffer[] = [...(await target.seeds()), ...keptCases(name).map(([, b]) => b)];
  if (pool.length === 0) pool.push(Buffer.alloc(0));
  /** Signature → length of the smallest input seen for it (inputs themselves are kept only for the first `save` signatures: memory). */
  const signatures = new Map<string, number>();
  const keep = new Map<string, Buffer>();
  const note = (sig: string, input: Buffer): boolean => {
    const prev = signatures.get(sig);
    if (prev === undefined) {
      signatures.set(sig, input.length);
      if (keep.size < save) keep.set(sig, input);
      return true;
    }
    if (input.length < prev) {
      signatures.set(sig, input.length);
      if (keep.has(sig)) keep.set(sig, input);
    }
    return false;
  };
  const findings = new Map<string, Finding>();
  let slowest = 0;
  const t0 = performance.now();
  for (const s of pool) {
    try {
      note(target.run(s), s);
    } catch (e) {
      findings.set(`seed ${String(e)}`, { kind: 'crash', message: e instanceof Error ? e.stack ?? e.message : String(e), input: s, ms: 0 });
    }
  }
  // Ctrl-C (or SIGTERM) ends the run early; what was found so far is still written and reported.
  let stopping = false;
  const stop = (): void => { stopping = true; };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let done = 0;
  for (let i = 1; i <= runs && !stopping; i++) {
    done = i;
    // The loop is synchronous: let signals in now and then.
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
    const pick = (): Buffer => pool[r() < 0.5 ? pool.length - 1 - Math.floor(r() * Math.min(pool.length, 64)) : Math.floor(r() * pool.length)]!;
    const input = mut.mutate(pick(), pick());
    const start = performance.now();
    let sig: string | null = null;
    try {
      sig = target.run(input);
    } catch (e) {
      const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      const key = `crash ${message.replace(/\d+/g, 'N').slice(0, 200)}`;
      const prev = findings.get(key);
      if (!prev) console.error(`${name}: finding at input ${i}: ${message.slice(0, 300)}`);
      if (!prev || input.length < prev.input.length) findings.set(key, { kind: 'crash', message: e instanceof Error ? e.stack ?? message : message, input, ms: 0 });
    }
    const ms = performance.now() - start;
    if (ms > slowest) slowest = ms;
    if (ms > SLOW_INPUT_MS) {
      // Re-run: a GC pause or a busy machine is not a finding; the fastest of three is.
      let ms2 = Infinity;
      for (let k = 0; k < 3; k++) {
        const again = performance.now();
        try { target.run(input); } catch { /* counted above */ }
        ms2 = Math.min(ms2, performance.now() - again);
      }
      if (ms2 > SLOW_INPUT_MS) {
        console.error(`${name}: slow input at ${i}: ${ms2.toFixed(1)} ms, ${input.length} bytes`);
        findings.set(`slow ${hashOf(input)}`, { kind: 'slow', message: `${ms2.toFixed(1)} ms`, input, ms: ms2 });
      }
    }
    if (sig !== null && note(sig, input)) {
      if (pool.length < MAX_POOL) pool.push(input);
      else pool[Math.floor(r() * pool.length)] = input;
    }
    if (i % 100_000 === 0) console.error(`${name}: ${i} inputs, ${((performance.now() - t0) / 1000).toFixed(0)} s, ${signatures.size} signatures, ${findings.size} findings`);
  }
  const seconds = (performance.now() - t0) / 1000;
  await target.close?.();

  const dir = path.join(FIXTURES, name);
  mkdirSync(dir, { recursive: true });
  const have = new Set(readdirSync(dir));
  const written: string[] = [];
  for (const f of findings.values()) {
    const file = `${f.kind}-${hashOf(f.input)}.bin`;
    if (!have.has(file)) {
      writeFileSync(path.join(dir, file), f.input);
      written.push(file);
    }
  }
  // A sample of the signature-novel inputs (smallest per signature, in order of discovery) as the regression corpus.
  let kept = 0;
  for (const input of keep.values()) {
    if (kept >= save) break;
    const file = `case-${hashOf(input)}.bin`;
    if (have.has(file)) continue;
    writeFileSync(path.join(dir, file), input);
    written.push(file);
    kept++;
  }
  console.log(JSON.stringify({
    target: name, runs: done, seed, seconds: Math.round(seconds), inputsPerSecond: Math.round(done / seconds),
    signatures: signatures.size, slowestMs: Number(slowest.toFixed(2)),
    findings: [...findings.values()].map((f) => ({ kind: f.kind, message: f.message.split('\n').slice(0, 4).join(' | '), bytes: f.input.length, file: `${f.kind}-${hashOf(f.input)}.bin` })),
    written: written.length,
  }, null, 2));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  });
}

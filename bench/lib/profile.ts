// Summarises V8 CPU profiles (node --cpu-prof) written by a benchmark run
// with --profile: the functions with the most self time, and the most
// expensive call paths into Quire's own code. Alone:
//   tsx bench/lib/profile.ts FILE.cpuprofile|DIR [TOP]
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(n: Node): string {
  const f = n.callFrame;
  const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/(bench\/\.build\/quire|node_modules)\//, (_m, g: string) => (g === 'node_modules' ? 'node_modules/' : 'src/'));
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

export function summarizeProfile(p: Profile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0);
  // Self time per function, and inclusive time per function (counted once per sample).
  const selfBy = new Map<string, number>();
  const inclBy = new Map<string, number>();
  for (const [id, us] of self) {
    const k = where(byId.get(id)!);
    selfBy.set(k, (selfBy.get(k) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = where(byId.get(cur)!);
      if (seen.has(kk)) continue;
      seen.add(kk);
      inclBy.set(kk, (inclBy.get(kk) ?? 0) + us);
    }
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms`;
  const lines = [`profile: ${(total / 1e6).toFixed(1)} s sampled, ${((100 * idle) / total).toFixed(0)}% idle`, '', 'self time:'];
  for (const [k, v] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(v)}  ${k}`);
  lines.push('', 'inclusive time, Quire code (src/):');
  for (const [k, v] of [...inclBy].filter(([k]) => k.includes('src/')).sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(v)}  ${k}`);
  return lines.join('\n');
}

/** Summarises the newest profile under `dir` (searched recursively), or the file itself. */
export async function summarizeProfiles(target: string, top = 25): Promise<string> {
  let file = target;
  if (statSync(target).isDirectory()) {
    const found: { f: string; t: number }[] = [];
    const walk = async (d: string) => {
      for (const e of await fs.readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.cpuprofile')) found.push({ f: p, t: statSync(p).mtimeMs });
      }
    };
    await walk(target);
    if (!found.length) return `no .cpuprofile under ${target}`;
    file = found.sort((a, b) => b.t - a.t)[0]!.f;
  }
  const p = JSON.parse(await fs.readFile(file, 'utf8')) as Profile;
  return `${file}\n${summarizeProfile(p, top)}`;
}

/**
 * Summarises every profile directly in `dir`: the main threads of all
 * processes of one run (the primary and each worker of `quire serve
 * --workers N`) merged into one table, and the other threads (full-text
 * indexing) into another. Node names the files CPU.<date>.<pid>.<thread>.<n>.
 */
export async function summarizeProfileDir(dir: string, top = 25): Promise<string> {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (!files.length) return `no .cpuprofile in ${dir}`;
  const isMain = (f: string) => f.split('.')[4] === '0';
  const out: string[] = [];
  for (const [what, group] of [
    ['main threads', files.filter(isMain)],
    ['other threads', files.filter((f) => !isMain(f))],
  ] as const) {
    if (!group.length) continue;
    const merged: Profile = { nodes: [], samples: [], timeDeltas: [], startTime: 0, endTime: 0 };
    let base = 0;
    for (const f of group) {
      const p = JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as Profile;
      let max = 0;
      for (const n of p.nodes) {
        merged.nodes.push({ ...n, id: n.id + base, children: n.children?.map((c) => c + base) });
        if (n.id > max) max = n.id;
      }
      for (let i = 0; i < p.samples.length; i++) {
        merged.samples.push(p.samples[i]! + base);
        merged.timeDeltas.push(p.timeDeltas[i] ?? 0);
      }
      base += max + 1;
    }
    out.push(`${what}: ${group.length} profile(s) in ${dir}`, summarizeProfile(merged, top), '');
  }
  return out.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [target, top] = process.argv.slice(2);
  if (!target) {
    console.error('usage: tsx bench/lib/profile.ts FILE.cpuprofile|DIR [TOP]');
    process.exit(2);
  }
  console.log(await summarizeProfiles(target, top ? Number(top) : 25));
}

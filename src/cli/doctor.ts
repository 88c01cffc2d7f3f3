// `quire doctor [--repair]`: the store's consistency checks (see
// src/store/sqlite/doctor.ts and src/store/postgres/doctor.ts for what is
// checked and repaired). Exit status
// 1 when a problem remains (found without --repair, or not repairable).

import type { Command } from 'commander';
import type { AdminHelpers } from './mail-admin.js';
import type { DoctorReport } from '../store/sqlite/index.js';

export function formatDoctorReport(r: DoctorReport, repair: boolean): string {
  const lines: string[] = [];
  for (const f of r.findings) {
    const what = f.repaired ? 'repaired' : f.repairable ? (repair ? 'NOT repaired' : 'would repair') : 'cannot repair';
    lines.push(`${f.check}\t${f.subject}\t${f.detail}\t[${what}]`);
  }
  const c = r.checked;
  const remaining = r.findings.filter((f) => !f.repaired).length;
  lines.push(
    `checked ${c.mailboxes} mailbox(es), ${c.messages} message(s), ${c.blobs} bod${c.blobs === 1 ? 'y' : 'ies'}, ${c.files} file(s): ` +
      (r.findings.length === 0 ? 'no problems' : `${r.findings.length} problem(s)${repair ? `, ${r.findings.length - remaining} repaired` : ''}${remaining > 0 && !repair ? ' (run with --repair)' : ''}`),
  );
  return lines.join('\n') + '\n';
}

export function registerDoctor(program: Command, h: AdminHelpers): void {
  h.addStoreOptions(program.command('doctor'))
    .description('check the store: counters, blob refcounts and files, UIDNEXT, modseqs, quota usage, structure/SEARCH index')
    .option('--repair', 'fix what can be fixed (safe while the server runs)')
    .action(async (opts: Record<string, unknown>) => {
      const repair = !!opts.repair;
      // Both backends have one (src/store/sqlite/doctor.ts, src/store/postgres/doctor.ts).
      const report = await h.withStore(opts, false, async (store) => {
        const s = store as unknown as { doctor?: (o: { repair: boolean }) => Promise<DoctorReport> };
        if (typeof s.doctor !== 'function') throw new Error('this store has no consistency checks');
        return s.doctor({ repair });
      });
      process.stdout.write(formatDoctorReport(report, repair));
      if (report.findings.some((f) => !f.repaired)) process.exitCode = 1;
    });
}

// Running a child process to completion and collecting what it printed (the
// CLI tests and the interop harness run `quire` this way).
import { spawn } from 'node:child_process';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` with `stdin` as its input; resolves when it has exited. */
export function runProcess(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; stdin?: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // A child that exits without reading all its input (sh -c 'ulimit ...', a tool that ignores stdin) closes the
    // pipe first on a busy machine: EPIPE on its stdin is not the test's failure (its exit and output are checked).
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

// serve_lib.mjs: start `nook serve` on a free loopback port for the client tests.
import { spawn } from 'node:child_process';

// Starts the server with extra environment; resolves to { proc, base, stop() }.
// stop() sends SIGTERM and resolves to the exit code.
export async function startServer(extraEnv = {}) {
  const proc = spawn(process.env.NOOK, ['serve'], {
    env: { ...process.env, NOOK_HOST: '127.0.0.1:0', ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const port = await new Promise((ok, no) => {
    const t = setTimeout(() => no(new Error(`server did not start: ${log}`)), 10000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = /Listening on [^ ]*:(\d+) /.exec(log);
      if (m) { clearTimeout(t); ok(Number(m[1])); }
    });
    proc.on('exit', (c) => no(new Error(`server exited ${c}: ${log}`)));
  });
  const exited = new Promise((r) => proc.on('exit', (c, sig) => r(sig ? 128 : c)));
  return {
    proc, base: `http://127.0.0.1:${port}`, log: () => log,
    stop: async () => { proc.kill('SIGTERM'); return exited; },
  };
}

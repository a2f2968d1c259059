// serve_lib.mjs: what the client tests share: start `nook serve` on a free loopback port,
// count checks, skip.
import { spawn } from 'node:child_process';

// A test's tally. check(name, cond, detail) counts a pass, or a failure with a FAIL line;
// failed() counts a failure the caller reported itself (an exception); done(before,
// after) prints "<before>N passed, M failed<after>" and exits 1 on any failure, else 0.
export function tally() {
  let pass = 0, fail = 0;
  return {
    check(name, cond, detail = '') {
      if (cond) pass++;
      else { fail++; console.error(`FAIL: ${name} ${detail}`); }
    },
    failed() { fail++; },
    done(before = '', after = '') {
      console.log(`${before}${pass} passed, ${fail} failed${after}`);
      process.exit(fail ? 1 : 0);
    },
  };
}

// Ends the test as skipped (ctest's SKIP_RETURN_CODE 77), saying why.
export function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(77);
}

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

// serve-load.mjs: throughput and latency of `nook serve` under concurrent clients.
//
//   node bench/serve-load.mjs [--model PATH] [--clients 1,4,8] [--requests N] [--tokens T]
//                             [--parallel P] [--nook build/nook] [--client http|fetch]
//
// Starts `nook serve` (NOOK_NUM_PARALLEL=P, default the largest client count;
// NOOK_CONTEXT_LENGTH 2048 unless set) on a free
// loopback port, loads the model (--model, required),
// then for each client count C runs C clients, each sending N streamed /api/generate
// requests of T tokens (temperature 0, distinct prompts, no prefix shared), and
// reports aggregate generated tokens/s (all clients' eval_count over the wall time),
// p50/p99 time to first token (request sent -> first NDJSON line with text), and the
// server's own overhead per request: the loopback round trip of a one-token generate
// minus the engine's total_duration for it (p50 over 50 requests), next to the round
// trip of GET /api/version (no work: the floor the machine's load sets). Per level also
// where the server's scheduler spent the wall (from /metrics: steps, seconds decoding,
// handing logits to requests, idle; `other` is the rest), the prompt tokens evaluated,
// and the CPU seconds of the server and of this client (which shares the machine).
// One JSON object per line on stdout, a table on stderr.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const model = arg('model', null);
if (!model) { console.error('usage: node bench/serve-load.mjs --model MODEL.gguf'); process.exit(2); }
const clientsList = arg('clients', '1,4,8').split(',').map(Number);
const nreq = Number(arg('requests', '3'));
const ntok = Number(arg('tokens', '64'));
const parallel = arg('parallel', String(Math.max(...clientsList)));
const nook = arg('nook', 'build/nook');
const clientKind = arg('client', 'http');
if (clientKind !== 'http' && clientKind !== 'fetch') { console.error('--client http|fetch'); process.exit(2); }

const proc = spawn(nook, ['serve'], {
  env: { NOOK_CONTEXT_LENGTH: '2048', ...process.env, NOOK_HOST: '127.0.0.1:0', NOOK_NUM_PARALLEL: parallel, NOOK_KEEP_ALIVE: '-1' },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let log = '';
const port = await new Promise((ok, no) => {
  proc.stderr.on('data', (d) => { log += d; const m = /Listening on [^ ]*:(\d+) /.exec(log); if (m) ok(Number(m[1])); });
  proc.on('exit', (c) => no(new Error(`server exited ${c}: ${log}`)));
});
const base = `http://127.0.0.1:${port}`;
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

// --client http (default): node:http on kept-alive sockets, each NDJSON line parsed as it
// arrives; --client fetch: the global fetch (undici) and a WHATWG stream reader, as
// before. The client runs on the server's machine: its own CPU time is taken from the
// server's cores (client_cpu_s says how much), and fetch costs several times more of it.
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
function generateHttp(prompt, tokens, stream) {
  const t0 = performance.now();
  const body = JSON.stringify({ model, prompt, stream, raw: true, options: { num_predict: tokens, temperature: 0, seed: 1 } });
  return new Promise((ok, no) => {
    const rq = http.request(`${base}/api/generate`, { method: 'POST', agent: httpAgent,
      headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let ttft = null, buf = '', last = null;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
          if (!stream) continue;
          const o = JSON.parse(line);
          if (o.error) return no(new Error(o.error));
          if (ttft === null && !o.done) ttft = performance.now() - t0;
          if (o.done) last = o;
        }
      });
      res.on('end', () => {
        if (!stream) { try { last = JSON.parse(buf); } catch (e) { return no(e); } }
        if (last && last.error) return no(new Error(last.error));
        ok({ wall: performance.now() - t0, ttft, o: last });
      });
      res.on('error', no);
    });
    rq.on('error', no);
    rq.end(body);
  });
}

async function generateFetch(prompt, tokens, stream) {
  const t0 = performance.now();
  const r = await fetch(`${base}/api/generate`, { method: 'POST', body: JSON.stringify({
    model, prompt, stream, raw: true, options: { num_predict: tokens, temperature: 0, seed: 1 } }) });
  if (!stream) { const o = await r.json(); return { wall: performance.now() - t0, o }; }
  let ttft = null, buf = '', last = null;
  const dec = new TextDecoder();
  for await (const chunk of r.body) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const o = JSON.parse(buf.slice(0, nl)); buf = buf.slice(nl + 1);
      if (o.error) throw new Error(o.error);
      if (ttft === null && !o.done) ttft = performance.now() - t0;
      if (o.done) last = o;
    }
  }
  return { wall: performance.now() - t0, ttft, o: last };
}
const generate = clientKind === 'fetch' ? generateFetch : generateHttp;

// the model's scheduler counters from /metrics (steps, tokens decoded, and the seconds
// its worker spent decoding, handing logits to requests, idle): where a level's wall went
async function sched() {
  const txt = await (await fetch(`${base}/metrics`)).text();
  const v = (name) => { const m = new RegExp(`^${name}\\{[^}]*\\} ([0-9.e+-]+)$`, 'm').exec(txt); return m ? Number(m[1]) : 0; };
  return { steps: v('nook_sched_steps_total'), decoded: v('nook_sched_decoded_tokens_total'),
    decode: v('nook_sched_decode_seconds_total'), handoff: v('nook_sched_handoff_seconds_total'),
    idle: v('nook_sched_idle_seconds_total') };
}

// CPU seconds (user + system) of the server (from /proc: Linux only, else null) and of
// this client: on a small machine the client's own parsing competes with the server
const clkTck = 100;   // USER_HZ, 100 on every Linux architecture nook builds for
function serverCpu() {
  try {
    const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8');
    const a = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(a[11]) + Number(a[12])) / clkTck;   // utime, stime (fields 14, 15)
  } catch { return null; }
}
const clientCpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

await generate('Hello', 1, false);   // load the model
const rows = [];
let k = 0;
for (const c of clientsList) {
  const ttfts = [];
  let tokens = 0;
  let prompt_tokens = 0;
  const s0 = await sched();
  const c0 = serverCpu(), k0 = clientCpu();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async (_, ci) => {
    for (let i = 0; i < nreq; i++) {
      const r = await generate(`Story ${k++} from client ${ci}: once upon a time`, ntok, true);
      ttfts.push(r.ttft);
      tokens += r.o.eval_count;
      prompt_tokens += r.o.prompt_eval_count;
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const c1 = serverCpu(), k1 = clientCpu();
  const s1 = await sched();
  const d = (k) => s1[k] - s0[k];
  const row = { clients: c, parallel: Number(parallel), requests: c * nreq, tokens, wall_s: +wall.toFixed(2),
    agg_tps: +(tokens / wall).toFixed(1), ttft_p50_ms: +pct(ttfts, 0.5).toFixed(1), ttft_p99_ms: +pct(ttfts, 0.99).toFixed(1),
    prompt_tokens, steps: d('steps'), decoded: d('decoded'), decode_s: +d('decode').toFixed(3),
    handoff_s: +d('handoff').toFixed(3), idle_s: +d('idle').toFixed(3),
    other_s: +(wall - d('decode') - d('handoff') - d('idle')).toFixed(3),
    server_cpu_s: c0 === null ? null : +(c1 - c0).toFixed(2), client_cpu_s: +(k1 - k0).toFixed(2) };
  rows.push(row);
  console.log(JSON.stringify(row));
}
const over = [];
for (let i = 0; i < 50; i++) {
  const r = await generate('Hi', 1, false);
  over.push(r.wall - r.o.total_duration / 1e6);
}
// the floor at the machine's present load: the round trip of a request that does no work
const floor = [];
for (let i = 0; i < 50; i++) {
  const t0 = performance.now();
  await (await fetch(`${base}/api/version`)).text();
  floor.push(performance.now() - t0);
}
const o = { overhead_p50_ms: +pct(over, 0.5).toFixed(3), overhead_p99_ms: +pct(over, 0.99).toFixed(3),
  version_rtt_p50_ms: +pct(floor, 0.5).toFixed(3), version_rtt_p99_ms: +pct(floor, 0.99).toFixed(3) };
console.log(JSON.stringify(o));
console.error('clients  requests  tokens  agg tok/s  TTFT p50 ms  TTFT p99 ms   steps  decode s  handoff s  idle s  other s  server cpu s  client cpu s');
for (const r of rows)
  console.error(`${String(r.clients).padStart(7)}  ${String(r.requests).padStart(8)}  ${String(r.tokens).padStart(6)}  ` +
    `${String(r.agg_tps).padStart(9)}  ${String(r.ttft_p50_ms).padStart(11)}  ${String(r.ttft_p99_ms).padStart(11)}  ` +
    `${String(r.steps).padStart(6)}  ${String(r.decode_s).padStart(8)}  ${String(r.handoff_s).padStart(9)}  ` +
    `${String(r.idle_s).padStart(6)}  ${String(r.other_s).padStart(7)}  ${String(r.server_cpu_s).padStart(12)}  ` +
    `${String(r.client_cpu_s).padStart(12)}`);
console.error(`server overhead per request (round trip - engine total_duration): p50 ${o.overhead_p50_ms} ms, p99 ${o.overhead_p99_ms} ms`);
console.error(`round trip of GET /api/version (no work; the floor at this load): p50 ${o.version_rtt_p50_ms} ms, p99 ${o.version_rtt_p99_ms} ms`);
proc.kill('SIGTERM');

// concurrency.mjs: 32 streaming clients at once against `nook serve` (stories260K,
// NOOK_NUM_PARALLEL=2, NOOK_MAX_QUEUE=12 so the queue overflows), some of them
// disconnecting at random moments. Every completed response must be well-formed and
// equal to the same request run alone at temperature 0; overflowed requests get 503;
// after the storm no sequence is active and nothing is queued; the server still
// answers and exits 0 on SIGTERM (under AddressSanitizer: no leak). Bounded: 32
// requests of 24 tokens, a 60 s budget. Run by ctest (label model).
import { existsSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const model = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(model)) skip(`${model} not found`);

const { check, failed, done } = tally();
const t0 = Date.now();
const srv = await startServer({ NOOK_NUM_PARALLEL: '2', NOOK_MAX_QUEUE: '12' });
const prompts = ['Once upon a time', 'The cat', 'Lily was', 'One day'];
const body = (p, stream) => JSON.stringify({ model, prompt: p, stream, options: { num_predict: 24, temperature: 0 } });

// seeded random, so a failure can be replayed
let seed = Number(process.env.SEED || 12345);
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);

try {
  const ref = {};
  for (const p of prompts) {
    const r = await fetch(`${srv.base}/api/generate`, { method: 'POST', body: body(p, false) });
    ref[p] = (await r.json()).response;
  }
  check('references', prompts.every((p) => typeof ref[p] === 'string' && ref[p].length > 0), JSON.stringify(ref));

  const one = async (i) => {
    const p = prompts[i % prompts.length];
    const ac = new AbortController();
    const dropAfter = rnd() < 0.3 ? 1 + Math.floor(rnd() * 10) : -1;   // ~30% disconnect
    try {
      const r = await fetch(`${srv.base}/api/generate`, { method: 'POST', body: body(p, true), signal: ac.signal });
      if (r.status === 503) {
        const e = await r.json();
        return { kind: '503', ok: typeof e.error === 'string' && /busy/.test(e.error) };
      }
      if (r.status !== 200) return { kind: 'bad', detail: `${r.status} ${await r.text()}` };
      let text = '', buf = '', lines = 0, done = null;
      const dec = new TextDecoder();
      for await (const chunk of r.body) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
          const o = JSON.parse(line);            // every line is one JSON object
          if (o.error) return { kind: 'bad', detail: line };
          if (o.done) done = o; else text += o.response;
          if (++lines === dropAfter) { ac.abort(); return { kind: 'dropped' }; }
        }
      }
      if (!done || buf.length) return { kind: 'bad', detail: `no final line (${buf})` };
      return { kind: 'done', ok: text === ref[p] && done.eval_count === 24, detail: `${JSON.stringify(text)} vs ${JSON.stringify(ref[p])}` };
    } catch (e) {
      if (e.name === 'AbortError') return { kind: 'dropped' };
      return { kind: 'bad', detail: String(e) };
    }
  };
  const results = await Promise.all(Array.from({ length: 32 }, (_, i) => one(i)));
  const count = (k) => results.filter((r) => r.kind === k).length;
  for (const r of results) {
    if (r.kind === 'bad') check('well-formed response', false, r.detail);
    if (r.kind === 'done') check('completed = alone at temperature 0', r.ok, r.detail);
    if (r.kind === '503') check('503 says busy', r.ok);
  }
  console.log(`completed ${count('done')}, 503 ${count('503')}, dropped ${count('dropped')}`);
  check('some completed', count('done') >= 2);
  check('the queue overflowed (503s)', count('503') >= 1);

  // the dropped ones stop at once: nothing active, nothing queued
  let m = '';
  for (let k = 0; k < 20; k++) {
    m = await (await fetch(`${srv.base}/metrics`)).text();
    if (/nook_active_sequences 0\n/.test(m) && /nook_queue_length 0\n/.test(m)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  check('no sequence active after the storm', /nook_active_sequences 0\n/.test(m));
  check('nothing queued after the storm', /nook_queue_length 0\n/.test(m));
  const again = await fetch(`${srv.base}/api/generate`, { method: 'POST', body: body(prompts[0], false) });
  check('still serving, same answer', (await again.json()).response === ref[prompts[0]]);
} catch (e) {
  failed();
  console.error('FAIL: exception', e);
}
const code = await srv.stop();
check('server exits 0 on SIGTERM', code === 0, `${code}: ${srv.log().slice(-2000)}`);
check('bounded in time', Date.now() - t0 < 60000, `${Date.now() - t0} ms`);
done('', ` (${Date.now() - t0} ms)`);

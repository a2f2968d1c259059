// clients.mjs: the real npm clients, unchanged, against `nook serve` on loopback with
// stories260K: `ollama` (generate and chat, streamed and whole; list; show; ps; an
// abort mid-stream) and `openai` (chat.completions whole and streamed with
// stream_options.include_usage; completions; models.list; an error's shape).
// Run by ctest (label model): node clients.mjs, with NOOK (the binary) and
// NOOK_TEST_MODELS set. Exits 77 (skip) when the fixture or node_modules is missing.
import { existsSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/ollama')) || !existsSync(resolve(here, 'node_modules/openai'))) skip('run `npm ci` in tests/clients first');
const model = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(model)) skip(`${model} not found`);
const { Ollama } = await import('ollama');
const { default: OpenAI } = await import('openai');

const { check, failed, done } = tally();

// start the server on a free port
const srv = await startServer();
const base = srv.base;
const want = ', there was a little girl named Lily. She';
const opts = { num_predict: 12, temperature: 0 };

try {
  // ---- ollama ----
  const ol = new Ollama({ host: base });
  const g = await ol.generate({ model, prompt: 'Once upon a time', stream: false, options: opts });
  check('ollama generate text', g.response === want, JSON.stringify(g.response));
  check('ollama generate done', g.done === true && g.done_reason === 'length' && g.eval_count === 12);
  check('ollama generate context', Array.isArray(g.context) && g.context.length === 17);

  let text = '', parts = 0, last;
  for await (const p of await ol.generate({ model, prompt: 'Once upon a time', stream: true, options: opts })) {
    text += p.response; parts++; last = p;
  }
  check('ollama generate stream text', text === want, JSON.stringify(text));
  check('ollama generate stream parts', parts === 13, `${parts}`);
  check('ollama generate stream end', last.done === true && last.prompt_eval_count >= 1 && last.eval_count === 12);

  const c = await ol.chat({ model, messages: [{ role: 'user', content: 'Once upon a time' }], stream: false, options: opts });
  check('ollama chat', c.message.role === 'assistant' && c.message.content === want, JSON.stringify(c.message));
  text = '';
  for await (const p of await ol.chat({ model, messages: [{ role: 'user', content: 'Once upon a time' }], stream: true, options: opts }))
    text += p.message.content;
  check('ollama chat stream', text === want, JSON.stringify(text));

  const emb = await ol.embed({ model, input: ['hello', 'world'] });
  const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  check('ollama embed', emb.embeddings.length === 2 && emb.embeddings[0].length > 0 &&
    Math.abs(norm(emb.embeddings[0]) - 1) < 1e-5 && emb.prompt_eval_count > 0, JSON.stringify(emb).slice(0, 200));
  const emb1 = await ol.embed({ model, input: 'hello' });
  check('ollama embed is deterministic', JSON.stringify(emb1.embeddings[0]) === JSON.stringify(emb.embeddings[0]));

  const list = await ol.list();
  check('ollama list', Array.isArray(list.models), JSON.stringify(list));   // the store's models
  const ps = await ol.ps();
  check('ollama ps', ps.models.some((m) => m.name === model && m.expires_at), JSON.stringify(ps));
  const show = await ol.show({ model });
  check('ollama show', Array.isArray(show.capabilities) && show.capabilities.includes('completion'), JSON.stringify(show).slice(0, 200));

  // an abort mid-stream: the server's active sequences fall to 0 at once
  const st = await ol.generate({ model, prompt: 'Once', stream: true, options: { num_predict: 1000000, num_ctx: 64 } });
  let seen = 0, aborted = false;
  try {
    for await (const p of st) { void p; if (++seen === 3) st.abort(); }
  } catch (e) { aborted = e.name === 'AbortError'; }
  check('ollama abort raised AbortError', aborted && seen >= 3);
  await new Promise((r) => setTimeout(r, 300));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  check('abort stopped the sequence', /nook_active_sequences 0/.test(metrics), metrics.split('\n').filter((l) => /active|cancel/.test(l)).join(' '));

  // ---- openai ----
  const oa = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
  const r = await oa.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 12, temperature: 0 });
  check('openai chat', r.choices[0].message.content === want && r.choices[0].finish_reason === 'length', JSON.stringify(r.choices));
  check('openai chat usage', r.usage.completion_tokens === 12 && r.usage.total_tokens === r.usage.prompt_tokens + 12);

  text = ''; let usage = null, chunks = 0;
  const s = await oa.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 12,
    temperature: 0, stream: true, stream_options: { include_usage: true } });
  for await (const ch of s) {
    chunks++;
    if (ch.choices.length) text += ch.choices[0].delta.content || '';
    if (ch.usage) usage = ch.usage;
  }
  check('openai chat stream', text === want, JSON.stringify(text));
  check('openai stream usage', usage && usage.completion_tokens === 12, JSON.stringify(usage));

  const comp = await oa.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
  check('openai completions', comp.choices[0].text === want, JSON.stringify(comp.choices));

  const e = await oa.embeddings.create({ model, input: ['hello', 'world'] });
  check('openai embeddings', e.data.length === 2 && e.data[1].index === 1 &&
    Math.abs(e.data[0].embedding[0] - emb.embeddings[0][0]) < 1e-6, JSON.stringify(e).slice(0, 200));
  const e64 = await oa.embeddings.create({ model, input: 'hello', encoding_format: 'base64' });
  const raw = Buffer.from(e64.data[0].embedding, 'base64');
  const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  check('openai embeddings base64', Math.abs(f[0] - emb.embeddings[0][0]) < 1e-6, `${f[0]}`);

  const models = await oa.models.list();
  check('openai models.list', models.data.some((m) => m.id === model && m.object === 'model'));

  try {
    await oa.chat.completions.create({ model: 'no-such-model.gguf', messages: [{ role: 'user', content: 'x' }] });
    check('openai error thrown', false);
  } catch (e) {
    check('openai error status', e.status === 404, `${e.status}`);
    check('openai error shape', e.error && typeof e.error.message === 'string' && e.error.type === 'not_found_error',
      JSON.stringify(e.error));
  }
  try {
    await oa.chat.completions.create({ model, messages: 'not a list' });
    check('openai 400 thrown', false);
  } catch (e) {
    check('openai 400', e.status === 400 && e.error.type === 'invalid_request_error', JSON.stringify(e.error));
  }
} catch (e) {
  failed();
  console.error('FAIL: exception', e);
}
const code = await srv.stop();
check('server exits 0 on SIGTERM', code === 0, `${code}`);
done();

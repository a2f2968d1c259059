// compat.mjs: the rest of the OpenAI layer and the other APIs Ollama serves, against
// `nook serve` on loopback with stories260K, through the real clients where one exists:
// - n > 1 on /v1/chat/completions and /v1/completions (npm openai): n choices with their
//   index, streamed chunks with their choice's index, usage summed; the choices fork the
//   first one's sequence after the prompt (the server evaluates the prompt once: its
//   prompt-token counter grows by the prompt + 1 per other choice), and at temperature 0
//   every choice equals the answer of n = 1;
// - /v1/responses (npm openai responses.create, whole and streamed: the Responses event
//   sequence), instructions and messages input;
// - /v1/messages (Anthropic; no Anthropic client in the project, so fetch): the whole
//   message and the documented event sequence (message_start, ping, content_block_start,
//   content_block_delta..., content_block_stop, message_delta, message_stop), errors in
//   Anthropic's shape, x-api-key accepted when NOOK_API_KEY is set.
// Run by ctest (label model): node compat.mjs with NOOK and NOOK_TEST_MODELS. Exits 77 when
// the fixture or node_modules is missing.
import { existsSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/openai'))) {
  console.log('SKIP: run `npm ci` in tests/clients first');
  process.exit(77);
}
const model = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(model)) { console.log(`SKIP: ${model} not found`); process.exit(77); }
const { default: OpenAI } = await import('openai');

let pass = 0, fail = 0;
const check = (name, cond, detail = '') => {
  if (cond) pass++;
  else { fail++; console.error(`FAIL: ${name} ${detail}`); }
};

const KEY = 'test-key-compat';
const srv = await startServer({ NOOK_API_KEY: KEY, NOOK_NUM_PARALLEL: '4' });
const base = srv.base;
const promptCounter = async () => {
  const m = /^nook_prompt_tokens_total (\d+)/m.exec(await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text());
  return Number(m[1]);
};

// SSE events of a fetch response: [{event, data}]
async function sse(resp) {
  const text = await resp.text();
  return text.split('\n\n').filter((b) => b.trim()).map((b) => {
    const ev = /^event: (.*)$/m.exec(b), data = /^data: (.*)$/m.exec(b);
    return { event: ev && ev[1], data: data && JSON.parse(data[1]) };
  });
}

try {
  const oa = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });

  // ---- n > 1 ----
  const one = await oa.completions.create({ model, prompt: 'Once upon a time, a cat', max_tokens: 10, temperature: 0 });
  const before = await promptCounter();
  const three = await oa.completions.create({ model, prompt: 'Lily and Ben went to the park', max_tokens: 10, temperature: 0, n: 3 });
  const added = await promptCounter() - before;
  const P = three.usage.prompt_tokens;
  check('n=3 choices', three.choices.length === 3 && three.choices.map((c) => c.index).join() === '0,1,2', JSON.stringify(three.choices));
  check('n=3 usage sums', three.usage.completion_tokens === 30 && three.usage.total_tokens === P + 30, JSON.stringify(three.usage));
  check('n=3 forks after the prompt', added <= P + 2, `prompt ${P}, evaluated ${added}`);
  const alone = await oa.completions.create({ model, prompt: 'Lily and Ben went to the park', max_tokens: 10, temperature: 0 });
  check('n=3 at temperature 0 equal n=1', three.choices.every((c) => c.text === alone.choices[0].text),
    JSON.stringify(three.choices.map((c) => c.text)) + ' vs ' + JSON.stringify(alone.choices[0].text));
  void one;

  const seeded = await oa.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: 12, temperature: 1, seed: 7, n: 4 });
  const texts = seeded.choices.map((c) => c.message.content);
  check('n=4 chat choices', seeded.choices.length === 4 && seeded.choices.every((c, i) => c.index === i &&
    c.message.role === 'assistant' && c.finish_reason === 'length'), JSON.stringify(seeded.choices));
  check('n=4 seeded choices differ', new Set(texts).size > 1, JSON.stringify(texts));
  const again = await oa.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: 12, temperature: 1, seed: 7, n: 4 });
  check('n=4 seeded choices repeat', JSON.stringify(again.choices.map((c) => c.message.content)) === JSON.stringify(texts));

  const st = await oa.chat.completions.create({ model, messages: [{ role: 'user', content: 'Once upon a time' }],
    max_tokens: 12, temperature: 1, seed: 7, n: 4, stream: true, stream_options: { include_usage: true } });
  const got = ['', '', '', ''], finish = [], roles = [];
  let usage = null, after = 0;
  for await (const ch of st) {
    if (usage) after++;
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      if (c.delta.role) roles.push(c.index);
      got[c.index] += c.delta.content || '';
      if (c.finish_reason) finish.push(c.index);
    }
  }
  check('n=4 stream texts equal whole', JSON.stringify(got) === JSON.stringify(texts), JSON.stringify(got));
  check('n=4 stream: a role and a finish per choice', roles.sort().join() === '0,1,2,3' && finish.sort().join() === '0,1,2,3',
    `${roles} / ${finish}`);
  check('n=4 stream usage last, summed', usage && usage.completion_tokens === 48 && after === 0, JSON.stringify(usage));

  // ---- /v1/responses ----
  const want = alone.choices[0].text;
  const r1 = await oa.responses.create({ model, input: 'Lily and Ben went to the park', max_output_tokens: 10, temperature: 0 });
  check('responses output_text', r1.output_text === want && r1.object === 'response', JSON.stringify(r1.output_text));
  check('responses incomplete at the limit', r1.status === 'incomplete' && r1.incomplete_details.reason === 'max_output_tokens' &&
    r1.usage.output_tokens === 10 && r1.usage.total_tokens === r1.usage.input_tokens + 10, JSON.stringify(r1).slice(0, 400));
  const r2 = await oa.responses.create({ model, instructions: 'Tell a story.', max_output_tokens: 6, temperature: 0,
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'Once upon a time' }] }] });
  check('responses instructions echoed', r2.instructions === 'Tell a story.' && r2.output[0].type === 'message' &&
    r2.output[0].content[0].type === 'output_text' && r2.output_text.length > 0, JSON.stringify(r2).slice(0, 300));

  const rs = await oa.responses.create({ model, input: 'Lily and Ben went to the park', max_output_tokens: 10, temperature: 0, stream: true });
  const types = [];
  let delta = '', done = null, seqOk = true, n = 0;
  for await (const ev of rs) {
    types.push(ev.type);
    if (ev.sequence_number !== n++) seqOk = false;
    if (ev.type === 'response.output_text.delta') delta += ev.delta;
    if (ev.type === 'response.incomplete' || ev.type === 'response.completed') done = ev.response;
  }
  const order = types.filter((t, i) => t !== types[i - 1]).join(' ');
  check('responses stream events', order === 'response.created response.in_progress response.output_item.added ' +
    'response.content_part.added response.output_text.delta response.output_text.done response.content_part.done ' +
    'response.output_item.done response.incomplete', order);
  check('responses stream text', delta === want && done && done.output[0].content[0].text === want && seqOk, JSON.stringify(delta));
  try {
    await oa.responses.create({ model, input: 'x', previous_response_id: 'resp_1' });
    check('responses stateful refused', false);
  } catch (e) {
    check('responses stateful refused', e.status === 400 && /stateless/.test(e.error.message), JSON.stringify(e.error));
  }

  // ---- /v1/messages ----
  const hdr = { 'content-type': 'application/json', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' };
  const body = { model, max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'text', text: 'Lily and Ben went to the park' }] }] };
  const m1 = await (await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr, body: JSON.stringify({ ...body, temperature: 0 }) })).json();
  check('messages whole', m1.type === 'message' && m1.role === 'assistant' && m1.content[0].type === 'text' &&
    m1.content[0].text === want && m1.stop_reason === 'max_tokens' && m1.usage.output_tokens === 10 && m1.usage.input_tokens > 0,
  JSON.stringify(m1));
  const evs = await sse(await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr,
    body: JSON.stringify({ ...body, temperature: 0, stream: true }) }));
  // Anthropic's documented flow: message_start, ping?, (content_block_start, content_block_delta*, content_block_stop)*,
  // message_delta, message_stop; every event's data.type equals its event name
  const names = evs.map((e) => e.event).join(' ');
  check('messages stream sequence', /^message_start( ping)?( content_block_start( content_block_delta)* content_block_stop)+ message_delta message_stop$/.test(names), names);
  check('messages stream types', evs.every((e) => e.data.type === e.event));
  const streamed = evs.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
  const md = evs.find((e) => e.event === 'message_delta');
  check('messages stream text and usage', streamed === want && md.data.delta.stop_reason === 'max_tokens' &&
    md.data.usage.output_tokens === 10 && evs[0].data.message.usage.input_tokens === m1.usage.input_tokens, streamed);
  const sys = await (await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr,
    body: JSON.stringify({ ...body, system: [{ type: 'text', text: 'Once upon a time' }], stop_sequences: ['box'], max_tokens: 60, temperature: 0 }) })).json();
  check('messages system and stop_sequences', sys.content[0].text === '. They saw a big tree with a big ' &&
    sys.stop_reason === 'end_turn', JSON.stringify(sys));
  const bad = await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr,
    body: JSON.stringify({ model, messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] }) });
  const badj = await bad.json();
  check('messages image refused', bad.status === 400 && badj.type === 'error' && badj.error.type === 'invalid_request_error', JSON.stringify(badj));
  const nokey = await fetch(`${base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const nokeyj = await nokey.json();
  check('messages without the key: 401', nokey.status === 401 && nokeyj.error.type === 'authentication_error', JSON.stringify(nokeyj));
  const unknown = await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr, body: JSON.stringify({ ...body, model: 'no-such.gguf' }) });
  check('messages unknown model: 404', unknown.status === 404 && (await unknown.json()).error.type === 'not_found_error');
} catch (e) {
  fail++;
  console.error('FAIL: exception', e);
} finally {
  const code = await srv.stop();
  check('server exits 0 on SIGTERM', code === 0, `${code}`);
}
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);

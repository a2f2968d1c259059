// compat.mjs: the rest of the OpenAI layer and the other APIs Ollama serves, against
// `nook serve` on loopback with stories260K, through the real clients where one exists:
// - n > 1 on /v1/chat/completions and /v1/completions (npm openai): n choices with their
//   index, streamed chunks with their choice's index, usage summed; the choices fork the
//   first one's sequence after the prompt (the server evaluates the prompt once: its
//   prompt-token counter grows by the prompt + 1 per other choice), and at temperature 0
//   every choice equals the answer of n = 1;
// - /v1/responses (npm openai responses.create, whole and streamed: the Responses event
//   sequence), instructions and messages input;
// - /v1/messages on the wire, with fetch (anthropic.mjs drives Anthropic's client): the whole
//   message and the documented event sequence (message_start, ping, content_block_start,
//   content_block_delta..., content_block_stop, message_delta, message_stop), errors in
//   Anthropic's shape, x-api-key accepted when NOOK_API_KEY is set;
// - tools on both, forced (tool_choice any / a named tool / required) so that even this
//   model calls: tool_use blocks (whole, and streamed as input_json_delta) and
//   function_call items (whole and streamed), and the results sent back (tool_result,
//   function_call_output) enter the prompt.
// Run by ctest (label model): node compat.mjs with NOOK and NOOK_TEST_MODELS. Exits 77 when
// the fixture or node_modules is missing.
import { existsSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/openai'))) skip('run `npm ci` in tests/clients first');
const model = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(model)) skip(`${model} not found`);
const { default: OpenAI } = await import('openai');

const { check, failed, done } = tally();

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
    sys.stop_reason === 'stop_sequence' && sys.stop_sequence === 'box', JSON.stringify(sys));
  const bad = await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr,
    body: JSON.stringify({ model, messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] }) });
  const badj = await bad.json();
  check('messages image refused', bad.status === 400 && badj.type === 'error' && badj.error.type === 'invalid_request_error', JSON.stringify(badj));
  const nokey = await fetch(`${base}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const nokeyj = await nokey.json();
  check('messages without the key: 401', nokey.status === 401 && nokeyj.error.type === 'authentication_error', JSON.stringify(nokeyj));
  const unknown = await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr, body: JSON.stringify({ ...body, model: 'no-such.gguf' }) });
  check('messages unknown model: 404', unknown.status === 404 && (await unknown.json()).error.type === 'not_found_error');

  // ---- tools on both (forced with tool_choice, so even this model calls) ----
  const weather = { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'] };
  const atools = [{ name: 'get_weather', description: 'Weather of a city', input_schema: weather },
    { name: 'get_time', description: 'Time in a city', input_schema: { type: 'object', properties: { tz: { type: 'string', maxLength: 8 } }, required: ['tz'] } }];
  const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const t1 = await (await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr,
    body: JSON.stringify({ model, max_tokens: 200, messages: ask, tools: atools, tool_choice: { type: 'any' }, seed: 3 }) })).json();
  const use = (t1.content || []).find((b) => b.type === 'tool_use');
  check('messages tool_choice any: a tool_use block', use && ['get_weather', 'get_time'].includes(use.name) &&
    typeof use.input === 'object' && typeof use.id === 'string' && t1.stop_reason === 'tool_use', JSON.stringify(t1));
  const t2 = await (await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr,
    body: JSON.stringify({ model, max_tokens: 200, messages: ask, tools: atools, tool_choice: { type: 'tool', name: 'get_time' }, seed: 4, stream: true }) }));
  const tev = await sse(t2);
  const tnames = tev.map((e) => e.event).join(' ');
  const tstart = tev.find((e) => e.event === 'content_block_start' && e.data.content_block.type === 'tool_use');
  const pj = tev.filter((e) => e.event === 'content_block_delta' && e.data.delta.type === 'input_json_delta').map((e) => e.data.delta.partial_json).join('');
  let pinput = null;
  try { pinput = JSON.parse(pj); } catch { /* checked below */ }
  check('messages streamed tool_use', /^message_start( ping)?( content_block_start( content_block_delta)* content_block_stop)+ message_delta message_stop$/.test(tnames) &&
    tstart && tstart.data.content_block.name === 'get_time' && pinput && typeof pinput.tz === 'string' &&
    tev.find((e) => e.event === 'message_delta').data.delta.stop_reason === 'tool_use', `${tnames} ${pj}`);
  if (use) {
    const back = await fetch(`${base}/v1/messages`, { method: 'POST', headers: hdr, body: JSON.stringify({ model, max_tokens: 5, tools: atools,
      messages: [...ask, { role: 'assistant', content: [use] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21 C' }] }] }) });
    const bj = await back.json();
    check('messages tool_result back', back.status === 200 && bj.type === 'message' && bj.usage.input_tokens > t1.usage.input_tokens, JSON.stringify(bj));
  }
  const rtools = [{ type: 'function', name: 'get_weather', description: 'Weather of a city', parameters: weather }];
  const rr = await oa.responses.create({ model, input: 'What is the weather in Paris?', tools: rtools, tool_choice: 'required', max_output_tokens: 200, seed: 2 });
  const fc = rr.output.find((o) => o.type === 'function_call');
  let fargs = null;
  try { fargs = JSON.parse(fc.arguments); } catch { /* checked below */ }
  check('responses tool_choice required: a function_call item', fc && fc.name === 'get_weather' && fargs && typeof fargs.city === 'string' &&
    typeof fc.call_id === 'string', JSON.stringify(rr.output));
  const rs2 = await oa.responses.create({ model, input: 'Weather?', tools: rtools, tool_choice: 'required', max_output_tokens: 200, seed: 5, stream: true });
  let fdelta = '', fdone = null;
  for await (const ev of rs2) {
    if (ev.type === 'response.function_call_arguments.delta') fdelta += ev.delta;
    if (ev.type === 'response.output_item.done' && ev.item.type === 'function_call') fdone = ev.item;
  }
  check('responses streamed function call', fdone && fdone.name === 'get_weather' && fdone.arguments === fdelta && JSON.parse(fdelta).city !== undefined, fdelta);
  if (fc) {
    const rb = await oa.responses.create({ model, tools: rtools, max_output_tokens: 5, input: [
      { role: 'user', content: 'What is the weather in Paris?' },
      { type: 'function_call', call_id: fc.call_id, name: fc.name, arguments: fc.arguments },
      { type: 'function_call_output', call_id: fc.call_id, output: 'sunny, 21 C' }] });
    check('responses function_call_output back', rb.status !== 'failed' && rb.usage.input_tokens > rr.usage.input_tokens, JSON.stringify(rb.usage));
  }
} catch (e) {
  failed();
  console.error('FAIL: exception', e);
} finally {
  const code = await srv.stop();
  check('server exits 0 on SIGTERM', code === 0, `${code}`);
}
done();

// anthropic.mjs: Anthropic's own npm client (@anthropic-ai/sdk, pinned in package.json)
// against `nook serve`'s /v1/messages on loopback, with stories260K. compat.mjs checks
// the wire (the event order, the error bodies) with fetch; this checks that the client a
// coding agent is built on works unchanged:
// - messages.create, whole: the text equals the same conversation through the OpenAI
//   chat endpoint at temperature 0 (one generation path), stop_reason and usage filled;
// - messages.stream: the client's own event parser assembles the same text, its
//   finalMessage() has the usage, and the 'text' events add up to it;
// - system prompt and stop_sequences: stop_reason "stop_sequence" naming the string that
//   matched (whole and streamed), null when none matched;
// - tools with tool_choice any and a named tool, whole and streamed (the client joins
//   input_json_delta pieces into the tool_use block's input), and a tool_result sent back;
// - errors as the client's typed exceptions: 401 AuthenticationError for a wrong key,
//   404 NotFoundError for an unknown model, 400 BadRequestError for an image block;
// - countTokens is not served (404 in Anthropic's error shape), said in docs/api.md.
// Run by ctest (label model;clients): node anthropic.mjs with NOOK and NOOK_TEST_MODELS.
// Exits 77 when the fixture or node_modules is missing.
import { existsSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/@anthropic-ai/sdk')) || !existsSync(resolve(here, 'node_modules/openai'))) skip('run `npm ci` in tests/clients first');
const model = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'), 'stories260K.gguf');
if (!existsSync(model)) skip(`${model} not found`);
const { default: Anthropic } = await import('@anthropic-ai/sdk');
const { default: OpenAI } = await import('openai');

const { check, failed, done } = tally();
// the error a promise rejects with (null when it resolves)
const rejection = async (p) => { try { await p; return null; } catch (e) { return e; } };

const KEY = 'test-key-anthropic';
const srv = await startServer({ NOOK_API_KEY: KEY, NOOK_NUM_PARALLEL: '2' });
const tStart = Date.now();
try {
  const an = new Anthropic({ baseURL: srv.base, apiKey: KEY, maxRetries: 0, timeout: 60000 });
  const oa = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: KEY, maxRetries: 0 });
  const user = 'Lily and Ben went to the park';
  const ref = await oa.chat.completions.create({ model, messages: [{ role: 'user', content: user }], max_tokens: 12, temperature: 0 });
  const want = ref.choices[0].message.content;
  check('reference text', typeof want === 'string' && want.length > 0, JSON.stringify(ref));

  // ---- whole ----
  const m = await an.messages.create({ model, max_tokens: 12, temperature: 0, messages: [{ role: 'user', content: user }] });
  check('create: a message', m.type === 'message' && m.role === 'assistant' && typeof m.id === 'string' && m.model === model, JSON.stringify(m));
  check('create: text equals the chat endpoint\'s', m.content.length === 1 && m.content[0].type === 'text' && m.content[0].text === want,
    `${JSON.stringify(m.content)} vs ${JSON.stringify(want)}`);
  check('create: stop_reason and usage', m.stop_reason === 'max_tokens' && m.usage.output_tokens === 12 &&
    m.usage.input_tokens === ref.usage.prompt_tokens, JSON.stringify(m.usage));

  // ---- streamed, through the client's own event parser ----
  const stream = an.messages.stream({ model, max_tokens: 12, temperature: 0, messages: [{ role: 'user', content: [{ type: 'text', text: user }] }] });
  let pieces = '', events = 0;
  stream.on('text', (t) => { pieces += t; });
  stream.on('streamEvent', () => { events++; });
  const fm = await stream.finalMessage();
  check('stream: text events add up', pieces === want, `${JSON.stringify(pieces)} vs ${JSON.stringify(want)}`);
  check('stream: final message', fm.content[0].text === want && fm.stop_reason === 'max_tokens' && fm.usage.output_tokens === 12 &&
    fm.usage.input_tokens === m.usage.input_tokens, JSON.stringify(fm));
  check('stream: several events', events >= 5, String(events));
  // stream: true on create gives the raw event iterator
  const raw = await an.messages.create({ model, max_tokens: 6, temperature: 0, stream: true, messages: [{ role: 'user', content: user }] });
  const types = [];
  for await (const ev of raw) types.push(ev.type);
  check('create stream: event order', types[0] === 'message_start' && types.at(-1) === 'message_stop' && types.includes('message_delta') &&
    types.includes('content_block_delta'), types.join(' '));

  // ---- system prompt and stop sequences ----
  const sys = await an.messages.create({ model, max_tokens: 60, temperature: 0, system: 'Once upon a time', stop_sequences: ['box', 'tree'],
    messages: [{ role: 'user', content: user }] });
  // stories260K continues '. They saw a big tree ...': the stop string that matched is named
  check('system + stop_sequences: stop_reason', sys.stop_reason === 'stop_sequence' && sys.stop_sequence === 'tree', JSON.stringify(sys));
  check('stop text cut', sys.content[0].text === '. They saw a big ', JSON.stringify(sys.content));
  const sst = an.messages.stream({ model, max_tokens: 60, temperature: 0, system: 'Once upon a time', stop_sequences: ['box', 'tree'],
    messages: [{ role: 'user', content: user }] });
  const sfm = await sst.finalMessage();
  check('streamed stop_sequence', sfm.stop_reason === 'stop_sequence' && sfm.stop_sequence === 'tree' &&
    sfm.content[0].text === sys.content[0].text, JSON.stringify(sfm));
  const plain = await an.messages.create({ model, max_tokens: 12, temperature: 0, stop_sequences: ['zebra'], messages: [{ role: 'user', content: user }] });
  check('a stop string that never matched: max_tokens, null stop_sequence', plain.stop_reason === 'max_tokens' && plain.stop_sequence === null &&
    plain.content[0].text === want, JSON.stringify(plain));

  // ---- tools ----
  const tools = [
    { name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'] } },
    { name: 'get_time', description: 'Time in a city', input_schema: { type: 'object', properties: { tz: { type: 'string', maxLength: 8 } }, required: ['tz'] } },
  ];
  const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const t1 = await an.messages.create({ model, max_tokens: 200, messages: ask, tools, tool_choice: { type: 'any' } });
  const use = t1.content.find((b) => b.type === 'tool_use');
  check('tool_choice any: a tool_use block', use && ['get_weather', 'get_time'].includes(use.name) && typeof use.input === 'object' &&
    typeof use.id === 'string' && t1.stop_reason === 'tool_use', JSON.stringify(t1));
  const ts = an.messages.stream({ model, max_tokens: 200, messages: ask, tools, tool_choice: { type: 'tool', name: 'get_time' } });
  let partial = '';
  ts.on('inputJson', (delta) => { partial += delta; });
  const t2 = await ts.finalMessage();
  const use2 = t2.content.find((b) => b.type === 'tool_use');
  check('named tool, streamed: the client assembled the input', use2 && use2.name === 'get_time' && typeof use2.input.tz === 'string' &&
    JSON.stringify(JSON.parse(partial)) === JSON.stringify(use2.input) && t2.stop_reason === 'tool_use', `${JSON.stringify(t2)} ${partial}`);
  if (use) {
    const back = await an.messages.create({ model, max_tokens: 5, tools, messages: [...ask, { role: 'assistant', content: [use] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21 C' }] }] });
    check('tool_result back', back.type === 'message' && back.usage.input_tokens > t1.usage.input_tokens, JSON.stringify(back));
  }

  // ---- errors as the client's typed exceptions ----
  const wrong = new Anthropic({ baseURL: srv.base, apiKey: 'not-the-key', maxRetries: 0 });
  const e401 = await rejection(wrong.messages.create({ model, max_tokens: 4, messages: ask }));
  check('wrong key: AuthenticationError', e401 instanceof Anthropic.AuthenticationError && e401.status === 401 &&
    e401.error?.error?.type === 'authentication_error', String(e401));
  const e404 = await rejection(an.messages.create({ model: 'no-such-model:latest', max_tokens: 4, messages: ask }));
  check('unknown model: NotFoundError', e404 instanceof Anthropic.NotFoundError && e404.status === 404 &&
    e404.error?.error?.type === 'not_found_error', String(e404));
  const e400 = await rejection(an.messages.create({ model, max_tokens: 4,
    messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] }] }));
  check('image block: BadRequestError', e400 instanceof Anthropic.BadRequestError && e400.status === 400 &&
    e400.error?.error?.type === 'invalid_request_error', String(e400));
  const eCount = await rejection(an.messages.countTokens({ model, messages: ask }));
  check('countTokens: 404 in Anthropic\'s shape', eCount instanceof Anthropic.NotFoundError, String(eCount));

  // the server still serves after the errors
  const after = await an.messages.create({ model, max_tokens: 12, temperature: 0, messages: [{ role: 'user', content: user }] });
  check('serves after errors', after.content[0].text === want, JSON.stringify(after.content));
} catch (e) {
  failed();
  console.error('FAIL: unexpected', e && e.stack ? e.stack : e, '\n--- server log ---\n', srv.log());
} finally {
  const code = await srv.stop();
  check('server exits 0 on SIGTERM', code === 0, String(code));
}
done(`anthropic client (${((Date.now() - tStart) / 1000).toFixed(1)} s): `);

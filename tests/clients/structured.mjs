// structured.mjs: structured output and tool calls through the server, with the real
// npm clients (`ollama`, `openai`) unchanged, against a random-weight model of a real
// vocabulary (qwen3-tiny from the mkmodel tool: Qwen3's tokenizer and chat template),
// whose unconstrained output is noise, so only the constraint can make it parse.
//  - Ollama `format` ("json" and a schema) on /api/generate and /api/chat, OpenAI
//    `response_format` (json_object, json_schema) on /v1/chat/completions and
//    /v1/completions, streamed and not (the schemas of tests/data/grammar/schemas in
//    turn, one per way): every output must stop by itself and validate
//    against its schema with an independent validator (validate.py: Python jsonschema).
//  - Tools: OpenAI tool_choice "required" (two tools) and a named function, whole and
//    streamed (the client's own stream helper assembles the deltas): a well-formed call
//    whose arguments validate against the tool's parameters; finish_reason "tool_calls";
//    the tool result sent back (role tool) enters the prompt. tool_choice "none" gives
//    text. Ollama (no tool_choice): tools offered as auto, a call parsed from the answer
//    into message.tool_calls, and a tool turn back.
//  - Refusals: an unsupported schema keyword, a tool_choice naming no tool: 400 in the
//    API's error shape.
// Run by ctest (label model): NOOK (binary), NOOK_BUILD (for mkmodel), NOOK_TEST_MODELS.
// Exits 77 (skip) when a prerequisite is missing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skip, startServer, tally } from './serve_lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(resolve(here, 'node_modules/ollama')) || !existsSync(resolve(here, 'node_modules/openai')))
  skip('run `npm ci` in tests/clients first');
const mk = join(process.env.NOOK_BUILD || '', 'mkmodel');
if (!process.env.NOOK_BUILD || !existsSync(mk)) skip('mkmodel tool not built');
if (spawnSync('python3', ['-c', 'import jsonschema']).status !== 0) skip('python3-jsonschema not installed');
const models = resolve(process.env.NOOK_TEST_MODELS || resolve(here, '../../../shared/models'));
const tmp = mkdtempSync(join(tmpdir(), 'nook-structured-'));
const model = join(tmp, 'qwen3-tiny.gguf');
const made = spawnSync(mk, ['qwen3-tiny', 'Q8_0', model, '--models', models], { encoding: 'utf8' });
if (made.status !== 0) { rmSync(tmp, { recursive: true, force: true }); skip(`mkmodel failed: ${made.stderr.slice(-200)}`); }

const { Ollama } = await import('ollama');
const { default: OpenAI } = await import('openai');

const { check, failed, done } = tally();
const cases = [];   // {name, schema, text}: validated together at the end
const expect = (name, schema, text) => cases.push({ name, schema, text });

const schemaDir = resolve(here, '../data/grammar/schemas');
const schemas = readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => ({ name: f.slice(0, -5), schema: JSON.parse(readFileSync(join(schemaDir, f), 'utf8')) }));

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'] } } },
  { type: 'function', function: { name: 'add', description: 'Adds two integers',
    parameters: { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 1000 },
      b: { type: 'integer', minimum: 0, maximum: 1000 } }, required: ['a', 'b'] } } },
];
const params = Object.fromEntries(tools.map((t) => [t.function.name, t.function.parameters]));

const srv = await startServer();
try {
  const ol = new Ollama({ host: srv.base });
  const oa = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  const N = 1500;   // bounded schemas finish far below this; "length" would be a failure

  // ---- structured output: every schema through every endpoint, streamed and not ----
  const variants = [
    ['ollama generate', async (fmt, seed, stream, N) => {
      const o = { model, prompt: 'Reply with JSON.', format: fmt, stream, options: { seed, num_predict: N } };
      if (!stream) { const r = await ol.generate(o); return [r.response, r.done_reason]; }
      let t = '', last;
      for await (const p of await ol.generate(o)) { t += p.response; last = p; }
      return [t, last.done_reason];
    }],
    ['ollama chat', async (fmt, seed, stream, N) => {
      const o = { model, messages: [{ role: 'user', content: 'Reply with JSON.' }], format: fmt, stream,
        think: false, options: { seed, num_predict: N } };
      if (!stream) { const r = await ol.chat(o); return [r.message.content, r.done_reason]; }
      let t = '', last;
      for await (const p of await ol.chat(o)) { t += p.message.content; last = p; }
      return [t, last.done_reason];
    }],
    ['openai chat', async (fmt, seed, stream, N) => {
      const o = { model, messages: [{ role: 'user', content: 'Reply with JSON.' }], seed, max_tokens: N, stream,
        response_format: fmt === 'json' ? { type: 'json_object' }
          : { type: 'json_schema', json_schema: { name: 'out', schema: fmt, strict: true } } };
      if (!stream) { const r = await oa.chat.completions.create(o); return [r.choices[0].message.content, r.choices[0].finish_reason]; }
      let t = '', fin;
      for await (const c of await oa.chat.completions.create(o)) {
        if (c.choices.length) { t += c.choices[0].delta.content || ''; fin = c.choices[0].finish_reason || fin; }
      }
      return [t, fin];
    }],
    ['openai completions', async (fmt, seed, stream, N) => {
      const o = { model, prompt: 'Reply with JSON.', seed, max_tokens: N, stream,
        response_format: fmt === 'json' ? { type: 'json_object' }
          : { type: 'json_schema', json_schema: { name: 'out', schema: fmt } } };
      if (!stream) { const r = await oa.completions.create(o); return [r.choices[0].text, r.choices[0].finish_reason]; }
      let t = '', fin;
      for await (const c of await oa.completions.create(o)) { t += c.choices[0].text; fin = c.choices[0].finish_reason || fin; }
      return [t, fin];
    }],
  ];
  const tStart = Date.now();
  let seed = 1, jsonStopped = 0, combo = 0;
  for (const [vname, run] of variants) {
    for (const stream of [false, true]) {
      // one schema per way, in turn (kept short: the suite also runs under ASan, at
      // ~12 tokens/s); 'json' on two ways (one native, one OpenAI). The library's own
      // test (cli_model_schema) runs every schema over several seeds and models.
      const pick = [schemas[combo % schemas.length]];
      if (combo === 0 || combo === 5) pick.unshift({ name: 'json', schema: 'json' });
      combo++;
      for (const s of pick) {
        const name = `${vname}${stream ? ' stream' : ''} ${s.name} seed ${seed}`;
        if (s.schema === 'json') {
          // any JSON value / object: unbounded, so noise may run to the limit; what
          // stopped must validate, and (fixed seeds) some do stop
          const [text, reason] = await run(s.schema, seed++, stream, 150);
          if (reason === 'stop') { jsonStopped++; expect(name, vname.startsWith('openai') ? { type: 'object' } : {}, text); }
          continue;
        }
        const [text, reason] = await run(s.schema, seed++, stream, N);
        check(`${name} stopped by itself`, reason === 'stop', `${reason}: ${JSON.stringify(text).slice(0, 200)}`);
        expect(name, s.schema, text);
      }
    }
  }
  check('format json / json_object: some outputs complete', jsonStopped >= 1, `${jsonStopped} of 2`);
  const t0 = Date.now();
  console.log(`structured output (${((Date.now() - tStart) / 1000).toFixed(1)} s): ${cases.length} outputs to validate (${jsonStopped} of 2 format json complete)`);

  // ---- tool calls: OpenAI ----
  const ask = [{ role: 'user', content: 'What is the weather in Paris, and what is 2+3?' }];
  const r1 = await oa.chat.completions.create({ model, messages: ask, tools, tool_choice: 'required', seed: 7, max_tokens: 300 });
  const m1 = r1.choices[0].message;
  check('openai required: finish_reason tool_calls', r1.choices[0].finish_reason === 'tool_calls', JSON.stringify(r1.choices[0]));
  const call = m1.tool_calls && m1.tool_calls[0];
  check('openai required: one well-formed call', m1.tool_calls && m1.tool_calls.length === 1 && call.type === 'function' &&
    /^call_/.test(call.id) && call.function.name in params && typeof call.function.arguments === 'string', JSON.stringify(m1));
  if (call) expect('openai required arguments', params[call.function.name] || { not: {} }, call.function.arguments);

  for (const [i, name] of ['get_weather', 'add'].entries()) {
    const r = await oa.chat.completions.create({ model, messages: ask, tools, seed: 11 + i, max_tokens: 300,
      tool_choice: { type: 'function', function: { name } } });
    const c = r.choices[0].message.tool_calls?.[0];
    check(`openai named ${name}`, c && c.function.name === name && r.choices[0].finish_reason === 'tool_calls', JSON.stringify(r.choices[0]));
    if (c) expect(`openai named ${name} arguments`, params[name], c.function.arguments);
  }

  // streamed: the client's stream helper assembles the tool_calls deltas
  const st = oa.chat.completions.stream({ model, messages: ask, tools, tool_choice: 'required', seed: 21, max_tokens: 300 });
  const fin = await st.finalChatCompletion();
  const sc = fin.choices[0].message.tool_calls?.[0];
  check('openai stream: assembled call', sc && sc.id && sc.function.name in params && fin.choices[0].finish_reason === 'tool_calls',
    JSON.stringify(fin.choices[0]));
  if (sc) expect('openai stream arguments', params[sc.function.name] || { not: {} }, sc.function.arguments);

  // the tool result goes back into the template (role tool): the prompt grows by it
  const back = async (result) => oa.chat.completions.create({ model, tools, seed: 7, max_tokens: 8,
    messages: [...ask, { role: 'assistant', content: null, tool_calls: m1.tool_calls },
      { role: 'tool', tool_call_id: call?.id, content: result }] });
  const b1 = await back('sunny');
  const b2 = await back('sunny, 21 degrees, light wind from the west');
  check('openai tool result answered', b1.choices[0].message.role === 'assistant' && b1.usage.prompt_tokens > r1.usage.prompt_tokens,
    `${b1.usage.prompt_tokens} vs ${r1.usage.prompt_tokens}`);
  check('openai tool result in the prompt', b2.usage.prompt_tokens > b1.usage.prompt_tokens + 5,
    `${b2.usage.prompt_tokens} vs ${b1.usage.prompt_tokens}`);

  // tool_choice none: no parsing, no calls (the constraint of format json keeps it short)
  const rn = await oa.chat.completions.create({ model, messages: ask, tools, tool_choice: 'none', seed: 7, max_tokens: 20 });
  check('openai tool_choice none', !rn.choices[0].message.tool_calls && rn.choices[0].finish_reason !== 'tool_calls',
    JSON.stringify(rn.choices[0]));

  console.log(`openai tool calls: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const t1 = Date.now();
  // ---- tool calls: Ollama (tools offered as auto). A random model never calls on its
  // own, so the answer is held to a call's JSON shape with `format`; the server parses it
  // into message.tool_calls as it would any model's call. ----
  const callShape = { type: 'object', properties: { name: { type: 'string', enum: ['get_weather', 'add'] },
    arguments: params.add }, required: ['name', 'arguments'] };
  const oc = await ol.chat({ model, messages: ask, tools, format: callShape, stream: false, think: false,
    options: { seed: 5, num_predict: 300 } });
  const otc = oc.message.tool_calls?.[0];
  check('ollama chat tool_calls', otc && otc.function.name in params && typeof otc.function.arguments === 'object' &&
    oc.message.content === '', JSON.stringify(oc.message));
  if (otc) expect('ollama tool arguments', params.add, JSON.stringify(otc.function.arguments));
  let calls = [], text = '';
  for await (const p of await ol.chat({ model, messages: ask, tools, format: callShape, stream: true, think: false,
    options: { seed: 5, num_predict: 300 } })) {
    text += p.message.content;
    if (p.message.tool_calls) calls.push(...p.message.tool_calls);
  }
  check('ollama chat stream tool_calls', calls.length === 1 && JSON.stringify(calls[0].function) === JSON.stringify(otc?.function) && text === '',
    JSON.stringify(calls));
  const ob = await ol.chat({ model, tools, stream: false, think: false, options: { seed: 5, num_predict: 8 },
    messages: [...ask, oc.message, { role: 'tool', tool_name: otc?.function.name, content: 'sunny, 21 degrees' }] });
  check('ollama tool result answered', ob.done && ob.message.role === 'assistant' && !ob.message.tool_calls, JSON.stringify(ob).slice(0, 300));
  // no tools: a text answer stays text
  const ot = await ol.chat({ model, messages: ask, stream: false, think: false, options: { seed: 5, num_predict: 8 } });
  check('ollama no tools: text', !ot.message.tool_calls && ot.message.content.length > 0, JSON.stringify(ot.message));

  console.log(`ollama tool calls: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  // ---- /api/show of a path model: what the GGUF says (the client reads capabilities) ----
  const sh = await ol.show({ model });
  check('ollama show: tools capability', sh.capabilities.includes('tools') && sh.capabilities.includes('thinking'), JSON.stringify(sh.capabilities));
  check('ollama show: details', sh.details.family === 'qwen3' && sh.details.quantization_level === 'Q8_0' &&
    /M$/.test(sh.details.parameter_size), JSON.stringify(sh.details));
  check('ollama show: model_info', sh.model_info['qwen3.block_count'] > 0 && sh.model_info['tokenizer.ggml.vocab_size'] === 151936 &&
    /tool_call/.test(sh.template), JSON.stringify(sh.model_info));

  // ---- refusals, in each API's error shape ----
  try {
    await oa.chat.completions.create({ model, messages: ask,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', not: {} } } } });
    check('openai bad schema refused', false);
  } catch (e) {
    check('openai bad schema refused', e.status === 400 && /not/.test(e.error?.message), `${e.status} ${JSON.stringify(e.error)}`);
  }
  try {
    await oa.chat.completions.create({ model, messages: ask, tools, tool_choice: { type: 'function', function: { name: 'nope' } } });
    check('openai unknown tool refused', false);
  } catch (e) {
    check('openai unknown tool refused', e.status === 400 && /nope/.test(e.error?.message), `${e.status} ${JSON.stringify(e.error)}`);
  }
  try {
    await ol.generate({ model, prompt: 'x', format: { type: 'object', not: {} } });
    check('ollama bad schema refused', false);
  } catch (e) {
    check('ollama bad schema refused', e.status_code === 400 && /not/.test(e.error), `${e.status_code} ${e.error}`);
  }
} catch (e) {
  failed();
  console.error('FAIL: exception', e);
} finally {
  check('server exits 0 on SIGTERM', (await srv.stop()) === 0);
  rmSync(tmp, { recursive: true, force: true });
}

const v = spawnSync('python3', [join(here, 'validate.py')], { input: JSON.stringify(cases), encoding: 'utf8' });
process.stdout.write(v.stdout + v.stderr);
check(`independent validation of ${cases.length} outputs`, v.status === 0);
done();

#!/usr/bin/env node
// grammar_speed.mjs - llama.cpp's side of bench/grammar_speed.sh: generation speed
// with and without a grammar, through node-llama-cpp 3.21.1 (LLAMACPP_REF, as
// ../shared/tools/ref/llamacpp.mjs).
//
//   node bench/grammar_speed.mjs -m MODEL.gguf --prompt TEXT --gbnf FILE [--schema FILE]
//        [--threads 2] [-n 64] [--seed 1] [--temperature 0.8] [--reps 3]
//
// Each rep generates up to n tokens (stopping at end of generation) from the prompt
// (special tokens parsed: pass the chat-template-rendered text) with top-k 40,
// top-p 0.9 (Ollama's defaults), once unconstrained, once with the GBNF grammar
// (llama.cpp's grammar sampler), and once with the JSON schema through
// node-llama-cpp's own converter when --schema is given. Prints one JSON line per
// run: {mode, tokens, ms, tps}. Runs with UV_THREADPOOL_SIZE=1 (see llamacpp.mjs).
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {performance} from "node:perf_hooks";
import {pathToFileURL} from "node:url";

if (process.env.UV_THREADPOOL_SIZE === undefined) {
    const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)],
        {stdio: "inherit", env: {...process.env, UV_THREADPOOL_SIZE: "1"}});
    process.exit(r.status ?? 1);
}
const a = {};
for (let i = 2; i < process.argv.length; i++) {
    const k = process.argv[i].replace(/^--?/, "");
    a[k] = process.argv[i + 1];
    i++;
}
const threads = Number(a.threads ?? 2), n = Number(a.n ?? 64), reps = Number(a.reps ?? 3);
const seed = Number(a.seed ?? 1), temperature = Number(a.temperature ?? 0.8);
const ref = process.env.LLAMACPP_REF;
const nlcPath = ref ? pathToFileURL(path.join(ref, "node_modules/node-llama-cpp/dist/index.js")).href : "node-llama-cpp";
const {getLlama, LlamaLogLevel, LlamaGrammarEvaluationState} = await import(nlcPath);
const llama = await getLlama({gpu: false, logLevel: LlamaLogLevel.error, build: "never"});
const model = await llama.loadModel({modelPath: a.m});
const ctx = await model.createContext({contextSize: 1024, batchSize: 512, sequences: 1,
    threads: {ideal: threads, min: threads}, ignoreMemorySafetyChecks: true});
const seq = ctx.getSequence();
const prompt = model.tokenize(a.prompt, true);
const gbnf = await llama.createGrammar({grammar: fs.readFileSync(a.gbnf, "utf8")});
const schemaGrammar = a.schema ? await llama.createGrammarForJsonSchema(JSON.parse(fs.readFileSync(a.schema, "utf8"))) : null;

async function run(mode, grammar) {
    await seq.clearHistory();
    const opts = {temperature, topK: 40, topP: 0.9, seed};
    if (grammar) opts.grammarEvaluationState = new LlamaGrammarEvaluationState({model, grammar});
    let count = 0, t0 = 0, text = [];
    // the clock starts at the first generated token (prompt evaluation excluded), as nook's eval rate
    for await (const t of seq.evaluate(prompt, opts)) {
        if (count === 0) t0 = performance.now();
        else text.push(t);
        count++;
        if (model.isEogToken(t) || count >= n + 1) break;
    }
    const ms = performance.now() - t0;
    const toks = count - 1;
    console.log(JSON.stringify({mode, tokens: toks, ms: +ms.toFixed(1), tps: +(toks * 1000 / ms).toFixed(2),
        text: model.detokenize(text).slice(0, 120)}));
}
for (let r = 0; r < reps; r++) {
    await run("plain", null);
    await run("gbnf", gbnf);
    if (schemaGrammar) await run("schema", schemaGrammar);
}

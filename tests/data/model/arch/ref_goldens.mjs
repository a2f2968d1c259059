#!/usr/bin/env node
// ref_goldens.mjs: llama.cpp's results on one generated model, in the golden format of
// tests/model/model_arch.h. Runs llama.cpp through node-llama-cpp (the same package and
// settings as /work/shared/tools/ref/llamacpp.mjs: CPU, 2 threads, flash attention
// "auto" = llama.cpp's default, context 1024, batch 512).
//
//   LLAMACPP_REF=/tmp/ref node ref_goldens.mjs MODEL.gguf HASH ID,ID,... > golden.txt
//
// Output: "hash", "ids", "greedy" (32 argmax ids from a fresh context after the prompt,
// each fed back, flash attention auto), then per prompt position the 40 most probable
// ids (flash attention auto) with log p under flash attention auto (= on, on the CPU) and
// off: log of llama.cpp's float32 softmax probabilities = log-softmax of its logits.
import path from "node:path";
import {pathToFileURL} from "node:url";

const [modelPath, hash, idsArg] = process.argv.slice(2);
if (!modelPath || !hash || !idsArg) { console.error("usage: ref_goldens.mjs MODEL HASH IDS"); process.exit(2); }
const ids = idsArg.split(",").map(Number);
const ref = process.env.LLAMACPP_REF;
if (!ref) { console.error("set LLAMACPP_REF"); process.exit(2); }
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(path.join(ref, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({gpu: false, build: "never", maxThreads: 0, logLevel: LlamaLogLevel.error, progressLogs: false});
const model = await llama.loadModel({modelPath: path.resolve(modelPath), gpuLayers: 0, defaultContextFlashAttention: "auto"});
const mkctx = (fa) => model.createContext({contextSize: 1024, batchSize: 512, sequences: 1,
    threads: {ideal: 2, min: 2}, flashAttention: fa, ignoreMemorySafetyChecks: true});
// log p of every id at every prompt position, in one batch
async function allPositions(fa) {
    const ctx = await mkctx(fa);
    const res = await ctx.getSequence().controlledEvaluate(ids.map((t) => [t, {generateNext: {probabilities: true, options: {temperature: 0}}}]));
    const out = res.map((r) => new Map([...r.next.probabilities.entries()].map(([t, p]) => [t, Math.log(p)])));
    await ctx.dispose();
    return out;
}
const TOP = 40, N = 32;
const out = [];
try {
    const on = await allPositions("auto");
    const off = await allPositions(false);
    const posLines = [];
    for (let p = 0; p < ids.length; p++) {
        const top = [...on[p].entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP);
        if (top.length < TOP) throw new Error(`position ${p}: only ${top.length} probabilities`);
        posLines.push(`pos ${p}`);
        for (const [t, lp] of top) posLines.push(`${t} ${lp.toFixed(7)} ${off[p].get(t).toFixed(7)}`);
    }
    const ctx = await mkctx("auto");
    const seq = ctx.getSequence();
    const greedy = [];
    for await (const t of seq.evaluate(ids, {temperature: 0, yieldEogToken: true})) {
        greedy.push(t);
        if (greedy.length >= N) break;
    }
    await ctx.dispose();
    out.push(`# llama.cpp (node-llama-cpp 3.21.1, CPU, 2 threads); columns: id, log p with flash attention auto (= on), off`);
    out.push(`# tests/model/model_arch.h generates; made by tests/data/model/arch/make_goldens.sh`);
    out.push(`hash ${hash}`);
    out.push(`ids ${ids.join(" ")}`);
    out.push(`greedy ${greedy.join(" ")}`);
    out.push(...posLines);
    console.log(out.join("\n"));
} finally {
    await model.dispose();
    await llama.dispose();
}

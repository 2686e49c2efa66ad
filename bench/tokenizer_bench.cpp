// Tokenizer throughput on 1 MB of mixed text (English prose, C++ code, Cyrillic, emoji):
// MB/s of input for the GPT-2 (byte-level BPE) and LLaMA (SentencePiece) vocabularies, plus
// decoding. Needs ../shared (or TOKENPROBE_SHARED); skips a vocabulary that is absent.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string mixed_text(size_t bytes) {
  const char* parts[] = {
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ",
      "The quick brown fox jumps over the lazy dog; meanwhile 1234 engineers debug 56789 lines.\n",
      "for (int i = 0; i < n; ++i) {\n    sum += values[i] * weights[i];  // dot product\n}\n",
      "    if (err != nullptr) { return std::make_unique<Error>(\"bad\", 42); }\n",
      "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир! ",
      "Emoji: 🦙🚀😁 ✅ 😶‍🌫️ and 🇩🇪 flags, ok? ",
      "\t\tIndented text with  two  spaces and trailing space \n\n",
  };
  std::string s;
  size_t i = 0;
  while (s.size() < bytes) {
    s += parts[i % 7];
    if (i % 5 == 0) s += std::to_string(i * 7919);
    ++i;
  }
  s.resize(bytes);
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
  return s;
}

std::unique_ptr<tp::Tokenizer> load(const std::string& vocab) {
  const char* env = std::getenv("TOKENPROBE_SHARED");
  const std::filesystem::path dir = env && *env ? env : TP_BENCH_SHARED;
  const auto path = dir / "tokenizer-tests" / ("ggml-vocab-" + vocab + ".gguf");
  if (!std::filesystem::exists(path)) return nullptr;
  return tp::Tokenizer::from_gguf(tp::GgufFile::open(path.string()));
}

void BM_Encode(benchmark::State& state, const std::string& vocab) {
  const auto tok = load(vocab);
  if (!tok) {
    state.SkipWithError("shared vocabulary not found (set TOKENPROBE_SHARED)");
    return;
  }
  const std::string text = mixed_text(1 << 20);
  size_t n = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text);
    n = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n);
}

void BM_Decode(benchmark::State& state, const std::string& vocab) {
  const auto tok = load(vocab);
  if (!tok) {
    state.SkipWithError("shared vocabulary not found (set TOKENPROBE_SHARED)");
    return;
  }
  const std::string text = mixed_text(1 << 20);
  const auto ids = tok->encode(text);
  for (auto _ : state) {
    auto s = tok->decode(ids);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

BENCHMARK_CAPTURE(BM_Encode, gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, gpt2, std::string("gpt-2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

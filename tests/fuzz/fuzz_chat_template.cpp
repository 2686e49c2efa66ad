// libFuzzer target for chat templates (tokenizer/chat_template.h): the input is a Jinja
// template, parsed and rendered over a fixed chat with and without the generation prompt.
// Hostile templates must end in tp::Error (syntax, runtime failure, raise_exception, or one
// of the limits on nesting, steps and value sizes), never a crash, a hang or an unbounded
// allocation. Seeds: tests/fuzz/corpus/chat_template (real templates from llama.cpp's
// models/templates). Build and run with tests/fuzz/run_fuzzers.sh.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace {

const nlohmann::ordered_json& chat() {
  static const nlohmann::ordered_json c = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Hi <s> \u00e9"},
    {"role": "assistant", "content": "Hello.", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]},
    {"role": "user", "content": [{"type": "text", "text": "more"}]}
  ])");
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string src(reinterpret_cast<const char*>(data), size);
  try {
    const tp::ChatTemplate t(src, "<s>", "</s>", "fuzz.jinja");
    for (bool gen : {true, false}) {
      tp::ChatRenderOptions o;
      o.add_generation_prompt = gen;
      o.now = 0;
      try {
        const std::string out = t.render(chat(), o);
        if (out.size() > tp::ChatTemplate::kMaxBytes) {
          std::fprintf(stderr, "rendered %zu bytes, over the limit\n", out.size());
          std::abort();
        }
      } catch (const tp::Error&) {
      }
    }
  } catch (const tp::Error&) {
  }
  return 0;
}

// Chat templates rendered by tokenprobe (llama.cpp's Jinja engine, third_party/llama-jinja)
// against @huggingface/jinja, byte for byte: every template in tests/data/chat-templates/
// templates (llama.cpp's models/templates) and every chat in chats.json, expected outputs in
// expected.json (scripts/chat-template-vectors). A template the reference refuses must be
// refused here too. Differences are listed by template and chat; the few known ones, each
// explained in tests/data/chat-templates/README.md, are in kKnownDifferences.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

fs::path data_dir() { return fs::path(TP_SOURCE_DIR) / "tests" / "data" / "chat-templates"; }

ojson read_json(const fs::path& p) {
  std::ifstream is(p);
  EXPECT_TRUE(is) << p;
  return ojson::parse(is);
}

std::string read_text(const fs::path& p) {
  std::ifstream is(p, std::ios::binary);
  std::stringstream ss;
  ss << is.rdbuf();
  return ss.str();
}

// "2026-03-05T14:07:00Z" as time_t (UTC).
std::time_t parse_utc(const std::string& s) {
  std::tm tm{};
  std::istringstream is(s);
  is >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return timegm(&tm);
}

// Templates @huggingface/jinja refuses on every chat and tokenprobe renders, with why
// (tests/data/chat-templates/README.md says more). Checked to stay so: if either engine
// changes its mind, the entry must go.
const std::map<std::string, std::string> kKnownDifferences = {
    {"ByteDance-Seed-OSS.jinja", "a dict literal with integer keys: Python's Jinja2 and llama.cpp accept it"},
    {"tencent-Hy3.jinja", "str.format(): Python's Jinja2 and llama.cpp have it, @huggingface/jinja does not"},
    {"fireworks-ai-llama-3-firefunction-v2.jinja",
     "adds the undefined variables `functions` and `datetime` to a string: llama.cpp prints undefined as ''"},
    {"meetkai-functionary-medium-v3.1.jinja", "filters `tools` (null) with selectattr: Python's Jinja2 and llama.cpp accept it"},
};

TEST(ChatTemplateVectors, IdenticalToHuggingFaceJinja) {
  const ojson spec = read_json(data_dir() / "chats.json");
  const ojson expected = read_json(data_dir() / "expected.json");
  ASSERT_EQ(expected["package"], "@huggingface/jinja");
  // strftime_now formats local time, as the reference did under TZ=UTC.
  setenv("TZ", "UTC", 1);
  tzset();
  tp::ChatRenderOptions base;
  base.now = parse_utc(spec["now_utc"].get<std::string>());

  size_t compared = 0, refused_by_both = 0, rendered = 0;
  std::vector<std::string> differences, known_seen;
  for (const auto& [file, chats] : expected["renderings"].items()) {
    const std::string src = read_text(data_dir() / "templates" / file);
    ASSERT_FALSE(src.empty()) << file;
    std::optional<tp::ChatTemplate> tmpl;
    std::string parse_error;
    try {
      tmpl.emplace(src, spec["bos_token"], spec["eos_token"], file);
    } catch (const tp::Error& e) {
      parse_error = e.what();
    }
    for (const auto& [chat, want] : chats.items()) {
      ++compared;
      const ojson& c = spec["chats"][chat];
      std::string got, error = parse_error;
      if (tmpl) {
        tp::ChatRenderOptions o = base;
        o.add_generation_prompt = c["add_generation_prompt"].get<bool>();
        try {
          got = tmpl->render(c["messages"], o);
        } catch (const tp::Error& e) {
          error = e.what();
        }
      }
      bool same;
      if (want.contains("error")) {
        same = !error.empty();
        refused_by_both += same;
      } else {
        same = error.empty() && got == want["output"].get<std::string>();
        rendered += same;
      }
      // A known difference: the reference refused and tokenprobe rendered.
      const bool known = kKnownDifferences.count(file) && want.contains("error") && error.empty();
      if (known && !same) known_seen.push_back(file + " / " + chat);
      if (same || known) continue;
      std::string d = file + " / " + chat + ": ";
      if (want.contains("error"))
        d += "reference refused (" + want["error"].get<std::string>() + ") but tokenprobe rendered:\n" + got;
      else if (!error.empty())
        d += "tokenprobe failed: " + error + "\n  reference:\n" + want["output"].get<std::string>();
      else
        d += "outputs differ\n  tokenprobe:\n" + got + "\n  reference:\n" + want["output"].get<std::string>();
      differences.push_back(d);
    }
  }
  std::printf("chat templates: %zu renderings compared with %s %s: %zu identical, %zu refused by both, %zu known "
              "differences, %zu unexpected differences\n",
              compared, expected["package"].get<std::string>().c_str(), expected["version"].get<std::string>().c_str(),
              rendered, refused_by_both, known_seen.size(), differences.size());
  for (const auto& d : differences) ADD_FAILURE() << d;
  // A known difference that no longer occurs on every chat must leave the list (and the README).
  EXPECT_EQ(known_seen.size(), kKnownDifferences.size() * spec["chats"].size());
  EXPECT_GT(rendered, compared / 2) << "most renderings must be compared, not refused";
}

}  // namespace

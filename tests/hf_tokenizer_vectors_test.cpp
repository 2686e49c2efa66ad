// Hugging Face tokenizers against the ids of the reference implementation
// (@huggingface/tokenizers, see scripts/hf-tokenizer-vectors): every committed vector file in
// tests/data/hf-tokenizers/ names its tokenizer; real third-party tokenizer files are fetched
// into the gitignored .cache/hf-tokenizers/ by `scripts/hf-tokenizer-vectors fetch` and the
// test skips, saying so, where they are absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kData = fs::path(TP_SOURCE_DIR) / "tests" / "data" / "hf-tokenizers";
const fs::path kCache = fs::path(TP_SOURCE_DIR) / ".cache" / "hf-tokenizers";

json read_json(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

// Where the tokenizer a vector file was made from lies.
fs::path tokenizer_dir(const std::string& name) {
  if (name.rfind("synthetic-", 0) == 0) return kData / "synthetic" / name.substr(10);
  if (name == "TinyStories-656K") return tp::test::shared_dir() / "models" / "real" / name;
  return kCache / name;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 40; ++i) {
    s += ' ';
    s += std::to_string(ids[i]);
  }
  return ids.size() > 40 ? s + " ..." : s;
}

std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

struct Tally {
  size_t ok = 0, all = 0;
};

// Checks every case of one vector file; returns false (with the reason) when it was skipped.
bool check_file(const fs::path& file, const fs::path& dir_override = {}) {
  const json doc = read_json(file);
  const std::string name = doc.at("tokenizer");
  const fs::path dir = dir_override.empty() ? tokenizer_dir(name) : dir_override;
  if (!fs::exists(dir / "tokenizer.json") && !fs::exists(dir / "vocab.json")) {
    std::printf("SKIP %s: %s not found (run scripts/hf-tokenizer-vectors fetch)\n", name.c_str(), dir.c_str());
    return false;
  }
  const auto tok = tp::Tokenizer::from_hf_folder(dir.string());
  Tally plain, special, decoded;
  for (const json& c : doc.at("cases")) {
    const std::string text = c.at("text");
    tp::EncodeOptions o;
    o.parse_special = true, o.add_bos = false, o.add_eos = false;
    const auto got = tok->encode(text, o);
    ++plain.all;
    if (got == ids_of(c.at("ids"))) ++plain.ok;
    else ADD_FAILURE() << name << ": '" << text << "'\n  got " << ids_str(got) << "\n want " << ids_str(ids_of(c.at("ids")));
    tp::EncodeOptions s;
    s.parse_special = true;
    const auto got_s = tok->encode(text, s);
    ++special.all;
    if (got_s == ids_of(c.at("ids_special"))) ++special.ok;
    else ADD_FAILURE() << name << " (special tokens): '" << text << "'\n  got " << ids_str(got_s) << "\n want "
                       << ids_str(ids_of(c.at("ids_special")));
    // Decoding gives back what the reference decodes (skip_special_tokens false).
    tp::DecodeOptions d;
    d.render_control = true;
    const std::string back = tok->decode(got, d);
    ++decoded.all;
    if (back == c.at("decoded").get<std::string>()) ++decoded.ok;
    else ADD_FAILURE() << name << " decode: '" << text << "'\n  got '" << back << "'\n want '" << c.at("decoded").get<std::string>() << "'";
  }
  std::printf("%s %s (%s, %s): ids %zu/%zu, with special tokens %zu/%zu, decode %zu/%zu  [%s]\n",
              plain.ok == plain.all && special.ok == special.all && decoded.ok == decoded.all ? "OK" : "NOT OK",
              name.c_str(), doc.at("reference").get<std::string>().c_str(), doc.at("source").get<std::string>().c_str(),
              plain.ok, plain.all, special.ok, special.all, decoded.ok, decoded.all, tok->summary().c_str());
  return true;
}

TEST(HfTokenizerVectors, EveryTokenizerGivesTheReferenceIds) {
  ASSERT_TRUE(fs::exists(kData)) << kData;
  size_t checked = 0, files = 0;
  for (const auto& e : fs::directory_iterator(kData)) {
    if (e.path().extension() != ".json") continue;
    ++files;
    if (check_file(e.path())) ++checked;
  }
  ASSERT_GE(files, 4u);
  if (checked == 0) GTEST_SKIP() << "no tokenizer files found; run scripts/hf-tokenizer-vectors fetch";
}

// The same GPT-2 vocabulary as a vocab.json + merges.txt folder (no tokenizer.json).
TEST(HfTokenizerVectors, Gpt2FilesFolderGivesTheReferenceIds) {
  const fs::path dir = kCache / "gpt2-files";
  if (!fs::exists(dir / "vocab.json")) GTEST_SKIP() << dir << " not found (run scripts/hf-tokenizer-vectors fetch)";
  const auto tok = tp::Tokenizer::from_hf_folder(dir.string());
  const json doc = read_json(kData / "gpt2.json");
  size_t ok = 0;
  for (const json& c : doc.at("cases")) {
    tp::EncodeOptions o;
    o.parse_special = true;
    const auto got = tok->encode(c.at("text").get<std::string>(), o);
    if (got == ids_of(c.at("ids"))) ++ok;
    else ADD_FAILURE() << "'" << c.at("text").get<std::string>() << "'\n  got " << ids_str(got);
  }
  std::printf("gpt2 vocab.json + merges.txt: %zu/%zu\n", ok, doc.at("cases").size());
}

}  // namespace

#include "hub/repo_files.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "hub/hub_error.h"
#include "hub/hub_ref.h"

namespace tp::hub {

namespace {

// Configuration and tokenizer files a model folder may hold (the loader and the tokenizers
// read these; generation_config.json holds the EOS ids some models only give there).
constexpr const char* kFolderFiles[] = {
    "config.json",      "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "tokenizer.model",  "vocab.json",             "merges.txt",     "vocab.txt",             "added_tokens.json"};

bool has(const std::vector<std::string>& listing, const std::string& f) {
  return std::find(listing.begin(), listing.end(), f) != listing.end();
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// `tag` in `name` as a whole word: "Q4_K" is not in "Q4_K_M", "q8_0" is in "model.Q8_0.gguf".
bool has_tag(const std::string& name, const std::string& tag) {
  const std::string n = upper(name), t = upper(tag);
  for (size_t at = n.find(t); at != std::string::npos; at = n.find(t, at + 1)) {
    const bool starts = at == 0 || !alnum(n[at - 1]);
    const size_t end = at + t.size();
    const bool ends = end == n.size() || (!alnum(n[end]) && n[end] != '_');
    if (starts && ends) return true;
  }
  return false;
}

const std::regex& split_pattern() {
  static const std::regex re(R"(^(.*)-([0-9]{5})-of-([0-9]{5})\.gguf$)", std::regex::icase);
  return re;
}

// The model's .gguf files, sorted (the Hub lists in order; a cached folder does not).
std::vector<std::string> model_ggufs(const std::vector<std::string>& listing) {
  std::vector<std::string> out;
  for (const auto& f : listing) {
    const std::string u = upper(f);
    if (ends_with(u, ".GGUF") && u.find("MMPROJ") == std::string::npos) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A split model's parts: all N of "PREFIX-0000i-of-0000N.gguf", each present.
std::vector<std::string> split_parts(const std::vector<std::string>& listing, const std::string& chosen,
                                     const std::string& repo) {
  std::smatch m;
  if (!std::regex_match(chosen, m, split_pattern())) return {chosen};
  const int n = std::stoi(m[3].str());
  std::vector<std::string> parts;
  for (int i = 1; i <= n; ++i) {
    char num[32];
    std::snprintf(num, sizeof num, "-%05d-of-%s.gguf", i, m[3].str().c_str());
    const std::string part = m[1].str() + num;
    if (!has(listing, part))
      throw HubError(HubFailure::EntryNotFound, "hf://" + repo, "part " + std::to_string(i) + " of " + chosen + " (" + part +
                                                                 ") is not in the repository",
                     "the split model is incomplete; pick another quantisation");
    parts.push_back(part);
  }
  return parts;
}

}  // namespace

bool is_weight_index(const std::string& file) {
  return ends_with(file, ".safetensors.index.json") || ends_with(file, ".bin.index.json");
}

std::vector<std::string> model_folder_files(const std::vector<std::string>& listing) {
  std::vector<std::string> out;
  for (const char* f : kFolderFiles)
    if (has(listing, f)) out.push_back(f);
  for (const char* w : {"model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin"}) {
    if (has(listing, w)) {
      out.push_back(w);
      return out;
    }
  }
  for (const auto& f : listing)
    if (f.find('/') == std::string::npos && ends_with(f, ".safetensors")) out.push_back(f);
  return out;
}

std::vector<std::string> index_shards(const std::string& index_json, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(index_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, where, std::string("is not JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error(ErrorKind::Format, where, "has no \"weight_map\" object", "a weight index maps tensor names to shard files");
  std::vector<std::string> shards;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string())
      throw Error(ErrorKind::Format, where, "weight_map[\"" + tensor.substr(0, 100) + "\"] is not a file name");
    const std::string f = file.get<std::string>();
    check_repo_path(f, where + ": weight_map[\"" + tensor.substr(0, 100) + "\"]");
    if (!has(shards, f)) shards.push_back(f);
  }
  return shards;
}

std::vector<std::string> gguf_quants(const std::vector<std::string>& listing) {
  static const std::regex tag(R"((^|[^A-Za-z0-9])(I?Q[0-9]+(_[A-Za-z0-9]+)*|BF16|F16|F32)(?![A-Za-z0-9_]))", std::regex::icase);
  std::vector<std::string> out;
  for (const auto& f : model_ggufs(listing)) {
    for (std::sregex_iterator it(f.begin(), f.end(), tag), end; it != end; ++it) {
      const std::string q = upper((*it)[2].str());
      if (!has(out, q)) out.push_back(q);
    }
  }
  return out;
}

std::vector<std::string> pick_gguf(const std::vector<std::string>& listing, const std::string& quant,
                                   const std::string& repo) {
  const auto ggufs = model_ggufs(listing);
  if (ggufs.empty())
    throw HubError(HubFailure::EntryNotFound, "hf://" + repo, "the repository holds no .gguf model file",
                   "for a model folder (config.json + safetensors) give -m hf://" + repo);
  const std::string want = quant.empty() ? kDefaultQuant : quant;
  for (const auto& f : ggufs)
    if (has_tag(f, want)) return split_parts(listing, f, repo);
  if (quant.empty()) return split_parts(listing, ggufs.front(), repo);
  std::string there;
  for (const auto& q : gguf_quants(listing)) there += (there.empty() ? "" : ", ") + q;
  throw HubError(HubFailure::EntryNotFound, "-hf " + repo + ":" + quant, "no .gguf file of that quantisation",
                 "the repository has: " + (there.empty() ? "no recognisable tags (files: " + ggufs.front() + "...)" : there) +
                     "; write -hf " + repo + ":QUANT");
}

}  // namespace tp::hub

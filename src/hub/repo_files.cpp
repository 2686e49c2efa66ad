#include "hub/repo_files.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

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

bool digits(const std::string& s, size_t at, size_t n) {
  for (size_t i = at; i < at + n; ++i)
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// A split GGUF's name, PREFIX-0000i-of-0000N.gguf (llama.cpp's gguf-split): PREFIX and N.
bool parse_split(const std::string& name, std::string& prefix, int& parts) {
  const std::string tail = "-00000-of-00000.gguf";
  if (name.size() <= tail.size()) return false;
  const size_t at = name.size() - tail.size();
  const std::string u = upper(name.substr(at));
  if (u[0] != '-' || !digits(u, 1, 5) || u.compare(6, 4, "-OF-") != 0 || !digits(u, 10, 5) || u.compare(15, 5, ".GGUF") != 0)
    return false;
  prefix = name.substr(0, at);
  parts = std::stoi(u.substr(10, 5));
  return parts > 0;
}

// The length of a quantisation tag starting at `at` of an upper-cased name (Q8_0, Q4_K_M,
// IQ2_XXS, BF16, F16, F32), or 0. The caller checks the character before it.
size_t quant_tag_at(const std::string& u, size_t at) {
  size_t end = at;
  for (const char* plain : {"BF16", "F16", "F32"})
    if (u.compare(at, std::strlen(plain), plain) == 0) end = std::max(end, at + std::strlen(plain));
  if (end == at) {
    size_t i = at + (u.compare(at, 2, "IQ") == 0 ? 1 : 0);  // at the Q
    if (i >= u.size() || u[i] != 'Q' || !digits(u, i + 1, 1)) return 0;
    for (++i; i < u.size() && std::isdigit(static_cast<unsigned char>(u[i]));) ++i;
    while (i + 1 < u.size() && u[i] == '_' && alnum(u[i + 1]))
      for (++i; i < u.size() && alnum(u[i]);) ++i;
    end = i;
  }
  return end == u.size() || (!alnum(u[end]) && u[end] != '_') ? end - at : 0;
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
  std::string prefix;
  int n = 0;
  if (!parse_split(chosen, prefix, n)) return {chosen};
  std::vector<std::string> parts;
  for (int i = 1; i <= n; ++i) {
    char num[32];
    std::snprintf(num, sizeof num, "-%05d-of-%05d.gguf", i, n);
    const std::string part = prefix + num;
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
  std::vector<std::string> out;
  for (const auto& f : model_ggufs(listing)) {
    const std::string u = upper(f);
    for (size_t at = 0; at < u.size(); ++at) {
      if (at > 0 && alnum(u[at - 1])) continue;  // a tag starts a word
      if (const size_t n = quant_tag_at(u, at); n > 0) {
        if (!has(out, u.substr(at, n))) out.push_back(u.substr(at, n));
        at += n - 1;
      }
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

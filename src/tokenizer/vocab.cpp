#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "io/gguf.h"
#include "io/small_file.h"
#include "tokenizer/pretokenizer.h"

namespace tp {

const char* vocab_kind_name(VocabKind k) {
  switch (k) {
    case VocabKind::Spm: return "SPM";
    case VocabKind::Bpe: return "BPE";
    case VocabKind::Wpm: return "WPM";
    case VocabKind::Char: return "CHAR";
    case VocabKind::Rwkv: return "RWKV";
  }
  return "?";
}

namespace {

bool contains(const std::string& hay, const char* needle) { return hay.find(needle) != std::string::npos; }

// Texts llama.cpp treats as end-of-generation when the token is special.
const char* const kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                 "<|eom_id|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>"};

}  // namespace

void Vocab::pad_to(int32_t n) {
  const bool finalised = !text_to_id.empty();
  while (n_tokens() < n) {
    const int32_t id = n_tokens();
    tokens.push_back("[EMPTY_" + std::to_string(id) + "]");  // as finalize() names empty tokens
    types.push_back(TokenType::Unused);
    if (!scores.empty()) scores.push_back(0.0f);
    if (finalised) {
      text_to_id.emplace(tokens.back(), id);
      lstrip.push_back(0);
      rstrip.push_back(0);
      max_token_len = std::max(max_token_len, tokens.back().size());
    }
  }
}

void Vocab::finalize() {
  text_to_id.clear();
  text_to_id.reserve(tokens.size());
  max_token_len = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty()) tokens[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
    text_to_id[tokens[i]] = static_cast<int32_t>(i);
    max_token_len = std::max(max_token_len, tokens[i].size());
  }
  if (types.size() != tokens.size()) types.assign(tokens.size(), TokenType::Normal);
  lstrip.assign(tokens.size(), 0);
  rstrip.assign(tokens.size(), 0);

  special_ids.clear();
  for (int32_t id = 0; id < n_tokens(); ++id) {
    const TokenType t = types[id];
    if (t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown)
      special_ids.push_back(id);
  }
  std::stable_sort(special_ids.begin(), special_ids.end(),
                   [&](int32_t a, int32_t b) { return tokens[a].size() > tokens[b].size(); });

  // Phi-3's special tokens swallow the whitespace after them (llama.cpp sets this by name).
  if (contains(name, "phi-3") || contains(name, "phi3")) {
    for (int32_t id : special_ids) rstrip[id] = 1;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
      if (int32_t id = find(t); id >= 0) rstrip[id] = 0;
    if (int32_t id = find("</s>"); id >= 0) rstrip[id] = 1;
  }

  eog_ids.clear();
  for (int32_t id : {eos, eot, eom})
    if (valid(id)) eog_ids.push_back(id);
  for (const char* t : kEogTexts) {
    const int32_t id = find(t);
    if (id >= 0 && (types[id] == TokenType::Control || types[id] == TokenType::UserDefined))
      eog_ids.push_back(id);
  }
  std::sort(eog_ids.begin(), eog_ids.end());
  eog_ids.erase(std::unique(eog_ids.begin(), eog_ids.end()), eog_ids.end());
}

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void check_length(const GgufFile& f, const char* key, size_t got, size_t want) {
  if (got != want)
    throw Error(ErrorKind::Format, f.path() + ": key " + key,
                "has " + std::to_string(got) + " entries but tokenizer.ggml.tokens has " +
                    std::to_string(want),
                "the vocabulary metadata is inconsistent; re-convert the model");
}

// A special id from the file replaces the default when it names a real token. BOS, EOS and
// UNK must: every prompt starts with BOS, generation stops at EOS, unknown text becomes UNK,
// so a wrong one would silently change what runs. Other ids outside the vocabulary leave
// the default (llama.cpp warns "bad special token" and does the same).
// -1 (written as u32 0xFFFFFFFF by some converters) means "none given": the default stays.
void read_special(const GgufFile& f, const char* key, int32_t& id, int32_t n_tokens, bool required_valid = false) {
  if (!f.has(key)) return;
  const int64_t v = f.get_i64(key);
  if (v >= 0 && v < n_tokens) id = static_cast<int32_t>(v);
  else if (required_valid && v != -1 && v != 0xFFFFFFFF)
    throw Error(ErrorKind::Format, f.path() + ": key " + key,
                "is " + std::to_string(v) + " but tokenizer.ggml.tokens has " + std::to_string(n_tokens) + " tokens (0-" +
                    std::to_string(n_tokens - 1) + ")",
                "the tokenizer metadata is inconsistent; fix the key or re-convert the model");
}

void read_token_arrays(const GgufFile& f, Vocab& v) {
  v.tokens = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = v.tokens.size();
  if (n == 0 || n > (1u << 31) - 1)
    throw Error(ErrorKind::Format, f.path() + ": key tokenizer.ggml.tokens",
                "has " + std::to_string(n) + " tokens", "a vocabulary needs 1 .. 2^31-1 tokens");
  if (f.has("tokenizer.ggml.scores")) {
    const auto s = f.get_f64_array("tokenizer.ggml.scores");
    check_length(f, "tokenizer.ggml.scores", s.size(), n);
    v.scores.assign(s.begin(), s.end());
  }
  v.types.assign(n, TokenType::Normal);
  if (f.has("tokenizer.ggml.token_type")) {
    const auto t = f.get_i64_array("tokenizer.ggml.token_type");
    check_length(f, "tokenizer.ggml.token_type", t.size(), n);
    for (size_t i = 0; i < n; ++i)
      v.types[i] = (t[i] >= 0 && t[i] <= 6) ? static_cast<TokenType>(t[i]) : TokenType::Undefined;
  }
}

void apply_model_defaults(const GgufFile& f, Vocab& v) {
  const int32_t n = v.n_tokens();
  const auto def = [n](int32_t id) { return id < n ? id : -1; };
  if (v.model == "llama") {
    v.kind = VocabKind::Spm;
    v.bos = def(1), v.eos = def(2), v.unk = def(0);
    v.add_bos = true, v.add_space_prefix = true;
  } else if (v.model == "gpt2") {
    v.kind = VocabKind::Bpe;
    v.bos = def(11), v.eos = def(11);
    if (!f.has("tokenizer.ggml.merges"))
      throw Error(ErrorKind::NotFound, f.path() + ": key tokenizer.ggml.merges",
                  "a byte-level BPE vocabulary (tokenizer.ggml.model = gpt2) needs its merges",
                  "the file is incomplete; re-convert the model");
    v.merges = f.get_string_array("tokenizer.ggml.merges");
    const PreTokenizerFlags pf = pre_tokenizer_flags(v.pre, f.path());
    v.add_bos = pf.add_bos, v.ignore_merges = pf.ignore_merges;
  } else if (v.model == "bert") {
    v.kind = VocabKind::Wpm;
    v.bos = def(101), v.unk = def(100), v.sep = def(102), v.pad = def(0), v.mask = def(103);
    v.add_bos = true, v.add_eos = true;  // [CLS] ... [SEP]
  } else if (v.model == "rwkv") {
    v.kind = VocabKind::Rwkv;  // no default special tokens, nothing added (llama.cpp)
  } else {
    throw Error(ErrorKind::Unsupported, f.path() + ": key tokenizer.ggml.model",
                "tokenizer model '" + gguf_printable(v.model) + "' is not supported",
                "tokenprobe reads llama (SentencePiece), gpt2 (byte-level BPE), bert (WordPiece) and rwkv (RWKV world)");
  }
}

}  // namespace

Vocab load_vocab_from_gguf(const GgufFile& f) {
  Vocab v;
  v.source = f.path();
  v.model = f.get_string("tokenizer.ggml.model");
  v.pre = f.get_string_or("tokenizer.ggml.pre", "");
  v.name = lower(f.get_string_or("general.name", ""));
  read_token_arrays(f, v);
  apply_model_defaults(f, v);
  const int32_t n = v.n_tokens();
  read_special(f, "tokenizer.ggml.bos_token_id", v.bos, n, true);
  if (v.kind == VocabKind::Wpm) read_special(f, "tokenizer.ggml.cls_token_id", v.bos, n);
  read_special(f, "tokenizer.ggml.eos_token_id", v.eos, n, true);
  read_special(f, "tokenizer.ggml.unknown_token_id", v.unk, n, true);
  read_special(f, "tokenizer.ggml.seperator_token_id", v.sep, n);
  read_special(f, "tokenizer.ggml.padding_token_id", v.pad, n);
  read_special(f, "tokenizer.ggml.mask_token_id", v.mask, n);
  read_special(f, "tokenizer.ggml.eot_token_id", v.eot, n);
  read_special(f, "tokenizer.ggml.eom_token_id", v.eom, n);
  v.add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = f.get_bool_or(v.kind == VocabKind::Wpm ? "tokenizer.ggml.add_sep_token"
                                                    : "tokenizer.ggml.add_eos_token", v.add_eos);
  v.add_space_prefix = f.get_bool_or("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  v.finalize();
  return v;
}

Vocab load_vocab_from_llama2c(const std::string& path, int32_t bos, int32_t eos) {
  // llama2.c's tokenizer.bin for a 32k vocabulary is about 0.5 MiB.
  const std::string data = read_small_file(path, "a llama2.c tokenizer file", kMaxMetadataFileBytes,
                                           "give the tokenizer file, e.g. tok512.bin");
  size_t pos = 0;
  const auto read = [&](void* dst, size_t n, const char* what) {
    if (data.size() - pos < n)
      throw Error(ErrorKind::Format, path + " @ byte " + std::to_string(pos),
                  std::string("file ends inside ") + what, "is this a llama2.c tokenizer.bin?");
    std::copy_n(data.data() + pos, n, static_cast<char*>(dst));
    pos += n;
  };
  uint32_t max_len = 0;
  read(&max_len, 4, "the header");
  Vocab v;
  v.source = path, v.model = "llama2.c", v.kind = VocabKind::Spm;
  while (pos < data.size()) {
    float score = 0;
    int32_t len = 0;
    read(&score, 4, "a token score");
    read(&len, 4, "a token length");
    if (len < 0 || static_cast<uint32_t>(len) > max_len || static_cast<size_t>(len) > data.size() - pos)
      throw Error(ErrorKind::Format, path + " @ byte " + std::to_string(pos - 4),
                  "token " + std::to_string(v.tokens.size()) + " has length " + std::to_string(len),
                  "lengths must be within 0 .. max_token_length and the file");
    v.tokens.emplace_back(data.substr(pos, len));
    v.scores.push_back(score);
    pos += len;
  }
  if (v.tokens.empty()) throw Error(ErrorKind::Format, path, "the tokenizer file holds no tokens");
  v.types.assign(v.tokens.size(), TokenType::Normal);
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string& t = v.tokens[i];
    if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>' && std::isxdigit((unsigned char)t[3]) &&
        std::isxdigit((unsigned char)t[4]))
      v.types[i] = TokenType::Byte;
  }
  const int32_t n = v.n_tokens();
  v.unk = n > 0 ? 0 : -1;
  v.bos = (bos >= 0 && bos < n) ? bos : -1;
  v.eos = (eos >= 0 && eos < n) ? eos : -1;
  if (v.unk >= 0) v.types[v.unk] = TokenType::Unknown;
  for (int32_t id : {v.bos, v.eos}) {
    if (id < 0) continue;
    v.types[id] = TokenType::Control;
    std::string& t = v.tokens[id];  // llama2.c writes BOS/EOS as "\n<s>\n", "\n</s>\n"
    while (!t.empty() && t.front() == '\n') t.erase(0, 1);
    while (!t.empty() && t.back() == '\n') t.pop_back();
  }
  // llama2.c stores SentencePiece's "▁" as a plain space; put it back.
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] != TokenType::Normal) continue;
    std::string out;
    for (char c : v.tokens[i]) out += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    v.tokens[i] = std::move(out);
  }
  v.add_bos = true, v.add_space_prefix = true;
  v.finalize();
  return v;
}

}  // namespace tp

// OpenAI's GPT-2 tokenizer files (encoder.json + vocab.bpe, as nanoGPT, tiktoken's "gpt2"
// encoding and Hugging Face's GPT2Tokenizer use them) read into the same Vocab a GGUF with
// tokenizer.ggml.model = "gpt2" and pre = "gpt-2" gives, so encoding runs the same code.
// Both files are hostile input: sizes are capped, the JSON is read with a SAX handler that
// accepts exactly one object of {"token": id} (no DOM of arbitrary depth, duplicate keys
// caught rather than silently merged), ids must be 0..N-1 each once, and every merge line
// must be two tokens of encoder.json whose concatenation is one too.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {
namespace {

using json = nlohmann::json;

const char* const kEndOfText = "<|endoftext|>";
const char* const kJsonHint = "encoder.json must be one JSON object {\"token\": id, ...}; is the file complete?";
const char* const kBpeHint =
    "vocab.bpe holds an optional '#version' line, then one merge per line: two tokens separated by one space";

std::string shown(std::string_view s) { return "'" + gguf_printable(s) + "'"; }

// "line L, column C" of a byte offset, for messages about text files.
std::string line_column(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
  const size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  const size_t column = offset - (line_start == std::string_view::npos || offset == 0 ? 0 : line_start + 1) + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// nlohmann's message without its "[json.exception...] parse error at line 1, column 2: "
// prefix (the location is given in our own form).
std::string json_problem(const std::string& what) {
  const size_t col = what.find("column ");
  const size_t colon = col == std::string::npos ? std::string::npos : what.find(": ", col);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

// Accepts exactly {"token": unsigned id, ...}; throws tp::Error naming the token otherwise.
class EncoderSax {
 public:
  EncoderSax(std::string_view text, const std::string& name) : text_(text), name_(name) {}
  std::vector<std::pair<std::string, uint64_t>> entries;

  bool start_object(std::size_t) {
    if (depth_++ != 0) refuse("an object");
    return true;
  }
  bool end_object() { return --depth_, true; }
  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool number_unsigned(json::number_unsigned_t id) {
    if (depth_ != 1) refuse("a number");
    if (key_.empty())
      throw Error(ErrorKind::Format, name_, "a token with id " + std::to_string(id) + " has empty text", kJsonHint);
    if (id >= static_cast<uint64_t>(INT32_MAX))
      throw Error(ErrorKind::Format, name_ + ": token " + shown(key_), "has id " + std::to_string(id),
                  "ids must be 0..N-1 for N tokens");
    if (entries.size() == kMaxGpt2Tokens)
      throw Error(ErrorKind::Format, name_, "holds more than " + std::to_string(kMaxGpt2Tokens) + " tokens",
                  "no real vocabulary is that large; is this the right file?");
    const auto [it, fresh] = seen_.emplace(key_, static_cast<int32_t>(entries.size()));
    if (!fresh)
      throw Error(ErrorKind::Format, name_ + ": token " + shown(key_),
                  "appears twice (ids " + std::to_string(entries[it->second].second) + " and " + std::to_string(id) + ")",
                  "each token text must be a key once");
    entries.emplace_back(std::move(key_), id);
    return true;
  }
  bool number_integer(json::number_integer_t v) { bad_id(std::to_string(v)); }
  bool number_float(json::number_float_t, const json::string_t& s) { bad_id(s); }
  bool null() { refuse("null"); }
  bool boolean(bool) { refuse("a boolean"); }
  bool string(json::string_t&) { refuse("a string"); }
  bool binary(json::binary_t&) { refuse("binary data"); }
  bool start_array(std::size_t) { refuse("an array"); }
  bool end_array() { refuse("an array"); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    const size_t at = position == 0 ? 0 : position - 1;  // nlohmann counts the byte it stopped on
    throw Error(ErrorKind::Format, name_ + " @ byte " + std::to_string(at) + " (" + line_column(text_, at) + ")",
                "is not valid JSON: " + json_problem(ex.what()), kJsonHint);
  }

 private:
  [[noreturn]] void bad_id(const std::string& literal) {
    if (depth_ != 1) refuse("a number");
    throw Error(ErrorKind::Format, name_ + ": token " + shown(key_), "has id " + gguf_printable(literal),
                "ids must be whole numbers 0..N-1 for N tokens");
  }
  [[noreturn]] void refuse(const std::string& what) {
    const std::string where = depth_ == 0 ? name_ : name_ + ": token " + shown(key_);
    throw Error(ErrorKind::Format, where,
                depth_ == 0 ? "the top level is " + what + ", not an object" : "has " + what + " where an id belongs",
                kJsonHint);
  }

  std::string_view text_;
  const std::string& name_;
  int depth_ = 0;
  std::string key_;
  TextIndex seen_;  // token text -> index in entries
};

// Token texts by id from the parsed entries: ids must be exactly 0..N-1.
std::vector<std::string> tokens_by_id(std::vector<std::pair<std::string, uint64_t>> entries, const std::string& name) {
  if (entries.empty()) throw Error(ErrorKind::Format, name, "holds no tokens", kJsonHint);
  const size_t n = entries.size();
  std::vector<std::string> tokens(n);
  std::vector<int32_t> owner(n, -1);
  for (size_t i = 0; i < n; ++i) {
    auto& [text, id] = entries[i];
    if (id >= n)
      throw Error(ErrorKind::Format, name + ": token " + shown(text),
                  "has id " + std::to_string(id) + " but the file holds " + std::to_string(n) + " tokens",
                  "ids must be 0..N-1, each given to one token");
    if (owner[id] >= 0)
      throw Error(ErrorKind::Format, name + ": id " + std::to_string(id),
                  "is given to both " + shown(entries[owner[id]].first) + " and " + shown(text),
                  "ids must be 0..N-1, each given to one token");
    owner[id] = static_cast<int32_t>(i);
    tokens[id] = text;
  }
  return tokens;
}

// Byte-level BPE can spell any input only when every byte is a token.
void require_every_byte(const Vocab& v, const std::string& name) {
  for (int b = 0; b < 256; ++b) {
    std::string mapped;
    utf8::append(mapped, byte_level::byte_to_cp(static_cast<uint8_t>(b)));
    if (v.find(mapped) < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      throw Error(ErrorKind::Format, name, std::string("has no token for byte ") + hex + " (written " + shown(mapped) + ")",
                  "a byte-level BPE vocabulary holds all 256 single-byte tokens in GPT-2's byte-to-unicode form");
    }
  }
}

// The merges of vocab.bpe in rank order, each checked against the vocabulary.
std::vector<std::string> parse_merges(std::string_view text, const std::string& name, const Vocab& v) {
  std::vector<std::string> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    const size_t line_start = pos;
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF: tokens never hold a raw \r
    const std::string where = name + ": line " + std::to_string(line_no);
    if (line_no == 1 && line.substr(0, 8) == "#version") continue;
    if (const size_t bad = utf8::first_invalid(line); bad != std::string_view::npos)
      throw Error(ErrorKind::Format, name + " @ byte " + std::to_string(line_start + bad) + " (" +
                                         line_column(text, line_start + bad) + ")",
                  "is not valid UTF-8", kBpeHint);
    const size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string_view::npos)
      throw Error(ErrorKind::Format, where,
                  shown(line) + " has " + std::to_string(std::count(line.begin(), line.end(), ' ') + 1) +
                      " space-separated parts, not 2",
                  kBpeHint);
    const std::string_view left = line.substr(0, sp), right = line.substr(sp + 1);
    for (std::string_view part : {left, right})
      if (v.find(part) < 0)
        throw Error(ErrorKind::Format, where, "merge " + shown(line) + " uses " + shown(part) + ", which is not a token",
                    "every merge must join two tokens of the encoder.json it comes with");
    std::string joined(left);
    joined += right;
    const int32_t made = v.find(joined);
    if (made < 0)
      throw Error(ErrorKind::Format, where, "merge " + shown(line) + " makes " + shown(joined) + ", which is not a token",
                  "every merge must make a token of the encoder.json it comes with");
    if (v.types[made] == TokenType::Control)  // text would turn into a token decode leaves out
      throw Error(ErrorKind::Format, where, "merge " + shown(line) + " makes the control token " + shown(joined),
                  "control tokens such as <|endoftext|> are never made by merges");
    merges.emplace_back(line);
  }
  return merges;
}

// The file's bytes, refusing files above cap before reading them.
std::string read_capped(const std::string& path, size_t cap) {
  const MappedFile f(path);
  if (f.size() > cap)
    throw Error(ErrorKind::Format, path,
                "is " + std::to_string(f.size()) + " bytes, more than the " + std::to_string(cap >> 20) +
                    " MiB a tokenizer file may have",
                "GPT-2's encoder.json is about 1 MiB and vocab.bpe 0.5 MiB; is this the right file?");
  return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

}  // namespace

Vocab parse_gpt2_vocab(std::string_view encoder_json, std::string_view vocab_bpe, const std::string& encoder_name,
                       const std::string& bpe_name) {
  EncoderSax sax(encoder_json, encoder_name);
  json::sax_parse(encoder_json.begin(), encoder_json.end(), &sax);
  Vocab v;
  v.kind = VocabKind::Bpe;
  v.model = "gpt2";
  v.pre = "gpt-2";
  v.source = encoder_name;
  v.tokens = tokens_by_id(std::move(sax.entries), encoder_name);
  v.types.assign(v.tokens.size(), TokenType::Normal);
  v.finalize();  // builds the text index the checks below use
  require_every_byte(v, encoder_name);
  // GPT-2's one special token ends documents: BOS, EOS and end of generation, as in its GGUFs.
  if (const int32_t eot = v.find(kEndOfText); eot >= 0) {
    v.types[eot] = TokenType::Control;
    v.bos = v.eos = eot;
  }
  v.merges = parse_merges(vocab_bpe, bpe_name, v);
  const PreTokenizerFlags pf = pre_tokenizer_flags(v.pre, encoder_name);
  v.add_bos = pf.add_bos, v.ignore_merges = pf.ignore_merges;
  v.finalize();
  return v;
}

Vocab load_vocab_from_gpt2_files(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
  const std::string encoder = read_capped(encoder_json_path, kMaxGpt2FileBytes);
  const std::string merges = read_capped(vocab_bpe_path, kMaxGpt2FileBytes);
  return parse_gpt2_vocab(encoder, merges, encoder_json_path, vocab_bpe_path);
}

}  // namespace tp

// Text <-> token ids for every model tokenprobe runs, built from GGUF metadata
// (tokenizer.ggml.*), a llama2.c tokenizer file, OpenAI's GPT-2 files (encoder.json +
// vocab.bpe), a list of characters or a Hugging Face tokenizer folder (hf_folder.h: its
// tokenizer.json runs through its own pipeline, hf_pipeline.h). Four families:
//   SPM  (tokenizer.ggml.model = "llama"): SentencePiece-style score-driven merges over
//        UTF-8 characters, byte fallback <0xNN>, "▁" for spaces and a space prefix.
//   BPE  ("gpt2"): byte-level BPE with ranked merges after a regex pre-tokenizer chosen by
//        tokenizer.ggml.pre (see pretokenizer.h).
//   WPM  ("bert"): WordPiece greedy longest match after BERT normalisation.
//   CHAR ("chars"): one token per Unicode character (nanoGPT's character-level models).
//   RWKV ("rwkv"): greedy longest match over byte strings (RWKV's world tokenizer,
//        rwkv_vocab.h), also from rwkv_vocab_v20230424.txt.
// Behaviour follows llama.cpp (the reference the project compares against); the few
// deliberate differences are listed in docs/tokenizers.md. Every token carries the byte span
// of the input it came from. The library never aborts: bad metadata gives tp::Error.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tp {

class GgufFile;
struct Vocab;
class BpeModel;
class PreTokenizer;
class RwkvTrie;
namespace hf {
class Pipeline;
}

struct EncodeOptions {
  std::optional<bool> add_bos;  // default: the model's tokenizer.ggml.add_bos_token
  std::optional<bool> add_eos;  // default: the model's add_eos_token (BERT: add [SEP])
  bool parse_special = false;   // recognise control tokens such as "<s>" written in the text
};
// Hugging Face tokenizers: add_bos / add_eos (default: true, HF's add_special_tokens) stand for
// the ids the post-processor puts before / after the text (BOS, [CLS] / EOS, [SEP]);
// parse_special recognises the added tokens marked special.

// One token and the bytes [begin, end) of the input text it stands for. Added tokens (BOS,
// EOS) and the SentencePiece space prefix cover no input: begin == end.
struct TokenSpan {
  int32_t id;
  size_t begin, end;
};

struct DecodeOptions {
  bool render_control = false;     // write control tokens (<s>, </s>) as their text
  // SPM/WPM: drop the space the encoder put before the first word and after special tokens
  bool strip_space_prefix = true;
};

class Tokenizer {
 public:
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& f);  // throws Error naming the key
  static std::unique_ptr<Tokenizer> from_llama2c(const std::string& path, int32_t bos = 1,
                                                 int32_t eos = 2);
  // OpenAI's GPT-2 encoder.json + vocab.bpe (load_vocab_from_gpt2_files in vocab.h): the
  // same vocabulary and encoding as a GGUF GPT-2 model's. Throws Error naming file and line.
  static std::unique_ptr<Tokenizer> from_gpt2_files(const std::string& encoder_json_path,
                                                    const std::string& vocab_bpe_path);
  // Character level (nanoGPT's meta.pkl itos): id i is the one character itos[i]; encoding a
  // character not in the list throws Error(Usage) naming it and its byte offset.
  static std::unique_ptr<Tokenizer> from_chars(std::vector<std::string> itos, const std::string& source = {});
  static std::unique_ptr<Tokenizer> from_vocab(Vocab vocab);  // validates like from_gguf
  // RWKV's rwkv_vocab_v20230424.txt: the ids and tokens of the GGUF llama.cpp's converter
  // makes from it (rwkv_vocab.h), without its padding unless pad_to (the model's rows) asks.
  // Throws Error naming the file and line.
  static std::unique_ptr<Tokenizer> from_rwkv_vocab(const std::string& path, int32_t pad_to = 0);
  // A Hugging Face folder: tokenizer.json, else vocab.json + merges.txt, else tokenizer.model,
  // with tokenizer_config.json / generation_config.json (hf_folder.h). Throws Error naming the
  // file and JSON path (e.g. "tokenizer.json: model.merges[12]") with a hint. pad_to: the
  // model's embedding rows, when it has more than the tokenizer has tokens (Vocab::pad_to).
  static std::unique_ptr<Tokenizer> from_hf_folder(const std::string& dir, int32_t pad_to = 0);
  static std::unique_ptr<Tokenizer> from_hf_json(const std::string& tokenizer_json_path);
  // The same from a tokenizer.json's text / a tokenizer.model's bytes (name: for messages).
  static std::unique_ptr<Tokenizer> from_hf_json_text(std::string_view text, const std::string& name);
  static std::unique_ptr<Tokenizer> from_sentencepiece(std::string_view bytes, const std::string& name);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& = {}) const;
  std::vector<TokenSpan> encode_with_spans(std::string_view text, const EncodeOptions& = {}) const;

  // The bytes the token stands for: byte tokens give their byte, "▁" gives a space, GPT-2's
  // byte-to-unicode characters are mapped back; control tokens give their text; unused give "";
  // a character vocabulary's tokens give their character.
  std::string token_bytes(int32_t id) const;
  std::string decode(const std::vector<int32_t>& ids, const DecodeOptions& = {}) const;

  const std::string& piece(int32_t id) const;  // the raw vocabulary string ("" when out of range)
  int32_t n_vocab() const;
  int32_t bos() const;
  int32_t eos() const;  // -1 when absent
  bool adds_bos() const;
  bool adds_eos() const;
  bool has_space_prefix() const;  // SPM/WPM: decode drops one leading space
  bool is_control(int32_t id) const;
  bool is_special(int32_t id) const;  // control, user-defined or unknown
  bool is_byte(int32_t id) const;
  bool is_eog(int32_t id) const;
  std::string type_name(int32_t id) const;  // "normal", "control", "byte", ...
  std::string summary() const;  // e.g. "SPM (llama), 32000 tokens, bos=1 eos=2, adds BOS"
  const Vocab& vocab() const { return *vocab_; }

 private:
  explicit Tokenizer(std::unique_ptr<Vocab> v);
  Tokenizer(std::unique_ptr<Vocab> v, std::unique_ptr<hf::Pipeline> hf);  // hf refers to *v
  struct Fragment;
  struct EncodeState;
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_text(std::string_view text, size_t base, bool after_special, std::vector<TokenSpan>& out,
                   EncodeState& st) const;

  std::unique_ptr<Vocab> vocab_;
  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<BpeModel> bpe_;
  std::vector<int32_t> byte_tokens_;  // SPM byte fallback: <0xNN> per byte, -1 when missing
  bool spm_words_independent_ = false;  // SPM: merge word by word (see spm.cpp)
  std::unique_ptr<hf::Pipeline> hf_;     // a tokenizer.json: encoding runs through it
  std::unique_ptr<RwkvTrie> rwkv_;       // RWKV: the trie over the tokens' bytes
};

// Turns generated ids into text one token at a time without ever cutting a UTF-8 character
// in two: bytes of an unfinished character wait for the next token. Invalid bytes come out
// as U+FFFD, so every string returned is valid UTF-8.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, const DecodeOptions& opts = {});
  std::string feed(int32_t id);  // newly completed text (may be empty)
  std::string flush();           // whatever is left (incomplete bytes as U+FFFD)
  std::string next_bytes(int32_t id);  // the exact bytes id adds (no UTF-8 buffering)

 private:
  const Tokenizer& tok_;
  DecodeOptions opts_;
  std::string pending_;
  bool after_special_ = true;
};

}  // namespace tp

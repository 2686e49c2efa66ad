// Internal: the per-family encoders the Tokenizer dispatches to. Each appends tokens with
// byte spans relative to the whole input (`base` is where `text` starts in it).
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tp {

// SentencePiece-style merges over UTF-8 characters (llama.cpp's llm_tokenizer_spm): spaces
// become "▁", a "▁" is put in front when add_prefix, adjacent symbols whose concatenation is a
// token merge highest score first (leftmost on ties); leftovers fall back to <0xNN> tokens.
void spm_encode(const Vocab& v, const std::vector<int32_t>& byte_tokens, std::string_view text,
                size_t base, bool add_prefix, bool words_independent, std::vector<TokenSpan>& out);
// True when no token holds "▁" right after another character: then merges never cross the
// start of a "▁" run and words can be merged one at a time.
bool spm_words_are_independent(const Vocab& v);

// WordPiece: BERT normalisation (NFD base letters, lower case, controls removed, punctuation
// and CJK split off), then greedy longest match per word with the "▁" word-start marker.
void wpm_encode(const Vocab& v, std::string_view text, size_t base, std::vector<TokenSpan>& out);

// Character-level: one token per UTF-8 character. Throws tp::Error(Usage) naming the byte
// offset (in the whole input) of invalid UTF-8 or of a character the vocabulary lacks.
void char_encode(const Vocab& v, std::string_view text, size_t base, std::vector<TokenSpan>& out);

}  // namespace tp

#include "tokenizer/hf_pretokenizer.h"

#include "core/error.h"
#include "tokenizer/pretokenizer.h"

namespace tp::hf {
namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior behavior_of(const Node& n) {
  const std::string& b = n.str();
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  n.fail("is '" + b + "'", "behavior is one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

struct Span {
  size_t b, e;
  bool flag;  // a match (before the behaviour is applied); to be removed (after)
};

// Rust tokenizers' SplitDelimiterBehavior applied to the spans (matches flagged) covering a piece.
std::vector<Span> apply_behavior(std::vector<Span> spans, Behavior beh) {
  std::vector<Span> out;
  bool prev_match = false;
  switch (beh) {
    case Behavior::Removed: return spans;
    case Behavior::Isolated:
      for (Span& s : spans) s.flag = false;
      return spans;
    case Behavior::Contiguous:
      for (const Span& s : spans) {
        if (s.flag == prev_match && !out.empty()) out.back().e = s.e;
        else out.push_back({s.b, s.e, false});
        prev_match = s.flag;
      }
      return out;
    case Behavior::MergedWithPrevious:
      for (const Span& s : spans) {
        if (s.flag && !prev_match && !out.empty()) out.back().e = s.e;
        else out.push_back({s.b, s.e, false});
        prev_match = s.flag;
      }
      return out;
    case Behavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->flag && !prev_match && !out.empty()) out.back().b = it->b;
        else out.push_back({it->b, it->e, false});
        prev_match = it->flag;
      }
      return {out.rbegin(), out.rend()};
  }
  return out;
}

struct SplitStep : PreTokenizerStep {
  Pattern pattern;
  Behavior behavior;
  bool invert;
  SplitStep(Pattern p, Behavior b, bool inv) : pattern(std::move(p)), behavior(b), invert(inv) {}
  void apply(std::vector<NormText>& pieces, size_t) const override {
    std::vector<NormText> out;
    for (const NormText& t : pieces) {
      std::vector<Span> spans;
      size_t prev = 0;
      for (const auto& [b, e] : pattern.find_all(t.s)) {
        if (b > prev) spans.push_back({prev, b, invert});
        spans.push_back({b, e, !invert});
        prev = e;
      }
      if (prev < t.s.size()) spans.push_back({prev, t.s.size(), invert});
      for (const Span& s : apply_behavior(std::move(spans), behavior))
        if (!s.flag && s.e > s.b) out.push_back(t.slice(s.b, s.e));
    }
    pieces.swap(out);
  }
};

struct Sequence : PreTokenizerStep {
  std::vector<std::unique_ptr<PreTokenizerStep>> steps;
  void apply(std::vector<NormText>& pieces, size_t section) const override {
    for (const auto& s : steps) s->apply(pieces, section);
  }
};

// GPT-2's pattern is the GGUF "gpt-2" pre-tokenizer: one definition (pretokenizer.cpp).
struct ByteLevel : PreTokenizerStep {
  bool add_prefix_space = false;
  std::unique_ptr<tp::PreTokenizer> gpt2;  // null: use_regex false
  void apply(std::vector<NormText>& pieces, size_t) const override {
    std::vector<NormText> out;
    for (NormText& t : pieces) {
      if (add_prefix_space && t.s.compare(0, 1, " ") != 0) t.prepend(" ");
      if (!gpt2) {
        out.push_back(std::move(t));
        continue;
      }
      for (const auto& [b, e] : gpt2->split(t.s)) out.push_back(t.slice(b, e));
    }
    pieces.swap(out);
  }
};

struct Metaspace : PreTokenizerStep {
  std::string replacement = "\xE2\x96\x81";
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;
  std::unique_ptr<SplitStep> split;  // on the replacement, merged with the next piece
  void apply(std::vector<NormText>& pieces, size_t section) const override {
    for (size_t i = 0; i < pieces.size(); ++i) {
      NormText& t = pieces[i];
      t = map_chars(t, [&](int32_t cp, std::string_view b) { return cp == ' ' ? replacement : std::string(b); });
      const bool want = prepend == Prepend::Always || (prepend == Prepend::First && section == 0 && i == 0);
      if (want && t.s.compare(0, replacement.size(), replacement) != 0) t.prepend(replacement);
    }
    if (split) split->apply(pieces, section);
  }
};

const char* const kPunctuation = R"([\p{P}\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E])";

std::unique_ptr<SplitStep> builtin(const char* pcre2, Behavior b, bool invert, const Node& n) {
  return std::make_unique<SplitStep>(Pattern(pcre2, n.where()), b, invert);
}

std::string regex_quote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::unique_ptr<PreTokenizerStep> make_metaspace(const Node& n) {
  auto m = std::make_unique<Metaspace>();
  m->replacement = n.str_or("replacement", m->replacement);
  if (m->replacement.empty()) n.at("replacement").fail("is empty", "the replacement is one character, usually \"▁\"");
  const std::string scheme = n.str_or("prepend_scheme", n.bool_or("add_prefix_space", true) ? "always" : "never");
  if (scheme == "always") m->prepend = Metaspace::Prepend::Always;
  else if (scheme == "first") m->prepend = Metaspace::Prepend::First;
  else if (scheme == "never") m->prepend = Metaspace::Prepend::Never;
  else n.at("prepend_scheme").fail("is '" + scheme + "'", "prepend_scheme is always, first or never");
  if (n.bool_or("split", true)) m->split = builtin(regex_quote(m->replacement).c_str(), Behavior::MergedWithNext, false, n);
  return m;
}

}  // namespace

std::unique_ptr<PreTokenizerStep> make_pre_tokenizer(const Node& n, bool& byte_level) {
  if (n.is_null()) return nullptr;
  const std::string& type = n.at("type").str();
  if (type == "Sequence") {
    auto seq = std::make_unique<Sequence>();
    const Node list = n.at("pretokenizers");
    for (size_t i = 0; i < list.size(); ++i)
      if (auto step = make_pre_tokenizer(list.at(i), byte_level)) seq->steps.push_back(std::move(step));
    return seq;
  }
  if (type == "Split") {
    const auto beh = n.get("behavior");
    return std::make_unique<SplitStep>(Pattern(n.at("pattern")), beh ? behavior_of(*beh) : Behavior::Isolated,
                                       n.bool_or("invert", false));
  }
  if (type == "ByteLevel") {
    byte_level = true;
    auto b = std::make_unique<ByteLevel>();
    b->add_prefix_space = n.bool_or("add_prefix_space", false);
    if (n.bool_or("use_regex", true)) b->gpt2 = std::make_unique<tp::PreTokenizer>("gpt-2");
    return b;
  }
  if (type == "Metaspace") return make_metaspace(n);
  if (type == "Whitespace") return builtin(R"(\w+|[^\w\s]+)", Behavior::Removed, true, n);
  if (type == "WhitespaceSplit") return builtin(R"(\s+)", Behavior::Removed, false, n);
  if (type == "Punctuation") {
    const auto beh = n.get("behavior");
    return builtin(kPunctuation, beh ? behavior_of(*beh) : Behavior::Isolated, false, n);
  }
  if (type == "Digits")
    return builtin(R"(\p{N})", n.bool_or("individual_digits", false) ? Behavior::Isolated : Behavior::Contiguous, false, n);
  if (type == "BertPreTokenizer") {
    auto seq = std::make_unique<Sequence>();
    seq->steps.push_back(builtin(R"(\s+)", Behavior::Removed, false, n));
    seq->steps.push_back(builtin(kPunctuation, Behavior::Isolated, false, n));
    return seq;
  }
  throw Error(ErrorKind::Unsupported, n.where(), "pre-tokenizer type '" + type + "' is not supported",
              "supported: Sequence, Split, ByteLevel, Metaspace, Whitespace, WhitespaceSplit, Punctuation, Digits, "
              "BertPreTokenizer (see docs/tokenizers.md)");
}

}  // namespace tp::hf

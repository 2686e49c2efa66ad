// Capture specs and interventions name their targets in one selector language, parsed once:
// the same text selects the same thing in both, and the same fault reads the same way.
#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "probe/capture_spec.h"
#include "probe/intervention.h"

namespace tp {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

Selector captured(const std::string& sel) {
  const auto rules = CaptureSpec::parse(sel).rules();
  EXPECT_EQ(rules.size(), 1u) << sel;
  return rules.empty() ? Selector{} : rules[0].sel;
}

Selector intervened(const std::string& sel) {
  const auto iv = parse_interventions("zero(" + sel + ")");
  EXPECT_EQ(iv.size(), 1u) << sel;
  return iv.empty() ? Selector{} : Selector(iv[0]);
}

TEST(Selector, TheSameTextSelectsTheSameInCaptureAndInterventions) {
  for (const char* sel : {"blocks.3.attn.hook_z[heads=2,pos=last,layers=0-3]", "blocks.*.hook_resid_post",
                          "*pattern[ layers = 1|3-4 , pos = 5-9|12 ]", "hook_embed[]", "hook_embed[,pos=prompt,]",
                          "  blocks.0.mlp.hook_post [pos=generated]", "blocks.17.hook_resid_post[pos=all]"}) {
    const Selector c = captured(sel), i = intervened(sel);
    EXPECT_EQ(c, i) << sel;
  }
  const Selector s = captured("*pattern[ layers = 1|3-4 , pos = 5-9|12 ]");
  EXPECT_EQ(s.glob, "*pattern");
  EXPECT_EQ(s.pos, PosMode::Explicit);
  EXPECT_TRUE(s.layers.contains(3) && s.layers.contains(4) && !s.layers.contains(2));
  EXPECT_TRUE(s.positions.contains(12) && !s.positions.contains(10));
  EXPECT_TRUE(s.applies_to("blocks.3.attn.hook_pattern", 3));
  EXPECT_FALSE(s.applies_to("blocks.2.attn.hook_pattern", 2));
  EXPECT_EQ(intervened("blocks.1.mlp.hook_post[neurons=10-19]").neurons.spans, (decltype(Ranges::spans){{10, 19}}));
  EXPECT_EQ(captured("hook_embed[dtype=bf16]").dtype, StoreType::BF16);
}

// Each language names itself in its errors, numbers included (an intervention's bad number
// used to be reported as a "spec clause" with the capture example).
TEST(Selector, ErrorsQuoteTheClauseInItsOwnLanguage) {
  const std::string iv = error_of([] { parse_interventions("zero(hook_embed[pos=2147483648])"); });
  EXPECT_NE(iv.find("intervention 'zero(hook_embed[pos=2147483648])'"), std::string::npos) << iv;
  EXPECT_NE(iv.find("out of range, at most 2147483647"), std::string::npos) << iv;
  EXPECT_EQ(iv.find("spec clause"), std::string::npos) << iv;
  EXPECT_NE(iv.find("zero(blocks.3.attn.hook_z[heads=2])"), std::string::npos) << iv;  // the hint's example
  const std::string cap = error_of([] { CaptureSpec::parse("hook_embed[pos=2147483648]"); });
  EXPECT_NE(cap.find("spec clause 'hook_embed[pos=2147483648]'"), std::string::npos) << cap;
  EXPECT_NE(cap.find("out of range, at most 2147483647"), std::string::npos) << cap;
}

// The same fault gives the same explanation in both languages.
TEST(Selector, TheSameFaultReadsTheSameInBoth) {
  const std::vector<std::pair<std::string, std::string>> faults = {
      {"hook_embed[pos]", "option 'pos' needs a value (name=value)"},
      {"nothing_here", "'nothing_here' matches no hook point (names look like blocks.3.hook_resid_post"},
      {"hook_embed[pos=sideways]", "pos 'sideways' is not all, last, prompt, generated or positions"},
      {"hook_embed[layers=3-1]", "range 3-1 runs backwards"},
      {"hook_embed[heads=x]", "'x' is not a number"},
      {"hook_embed[layers=]", "a number is missing"},
      {"hook_embed[pos=last", "options must end with ']'"},
      {"hook_embed[colour=red]", "unknown option 'colour'"}};
  for (const auto& [sel, says] : faults) {
    const std::string c = error_of([&] { CaptureSpec::parse(sel); });
    const std::string i = error_of([&] { parse_interventions("zero(" + sel + ")"); });
    EXPECT_NE(c.find(says), std::string::npos) << sel << ": " << c;
    EXPECT_NE(i.find(says), std::string::npos) << sel << ": " << i;
  }
  EXPECT_NE(error_of([] { CaptureSpec::parse("[pos=all]"); }).find("hook pattern or preset is missing"), std::string::npos);
  EXPECT_NE(error_of([] { parse_interventions("zero([pos=all])"); }).find("hook pattern is missing"), std::string::npos);
}

// An option of the other language is named as such, not as unknown.
TEST(Selector, OptionsOfTheOtherLanguageSaySo) {
  const std::string c = error_of([] { CaptureSpec::parse("blocks.0.mlp.hook_post[neurons=3]"); });
  EXPECT_NE(c.find("option 'neurons' is for interventions only (options here: layers, pos, heads, dtype)"), std::string::npos)
      << c;
  const std::string i = error_of([] { parse_interventions("zero(blocks.0.mlp.hook_post[dtype=f16])"); });
  EXPECT_NE(i.find("option 'dtype' is for capture specs only (options here: layers, pos, heads, neurons)"),
            std::string::npos)
      << i;
  // Presets are capture's: an intervention cannot target "default".
  EXPECT_NE(error_of([] { parse_interventions("zero(default)"); }).find("matches no hook point"), std::string::npos);
  EXPECT_EQ(CaptureSpec::parse("default[pos=last]").rules().size(), 5u);
}

}  // namespace
}  // namespace tp

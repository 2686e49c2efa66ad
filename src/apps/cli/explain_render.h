// The terminal page of `tokenprobe explain`: one page per chosen token, drawn only from the
// step record (the sampler's flight record and the "explain" object), so that a trace alone
// can be shown without the model.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace tp::cli {

struct PageStyle {
  bool color = false;
  int width = 80;
};

// Colour when stdout is a terminal whose TERM is set and not "dumb", and NO_COLOR is unset
// or empty; `mode` "always" / "never" override ("auto" = the rule above).
bool use_color(const std::string& mode);

// `step`: a line of steps.jsonl holding "explain" (and, when sampled, "logprobs" with the
// record under "x_tokenprobe"); `context`: the text before the chosen token. Error(Format)
// at `where` naming the field when the record lacks one the page draws (explain_record.h).
std::string render_explain_page(const nlohmann::json& step, const std::string& context, const PageStyle& style,
                                const std::string& where = "step record");

}  // namespace tp::cli

#include "tokenizer/chat_template.h"

#include <jinja/lexer.h>
#include <jinja/parser.h>
#include <jinja/runtime.h>
#include <jinja/value.h>

#include <cstdint>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "io/gguf.h"
#include "io/small_file.h"

namespace tp {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct ChatTemplate::Impl {
  std::string name, source, bos, eos;
  jinja::program program;
};

namespace {

// "line 3, column 14" from an engine message (lexer, parser and runtime errors all carry one).
std::string location_in(const std::string& message) {
  static const std::regex re("line [0-9]+, column [0-9]+");
  std::smatch m;
  return std::regex_search(message, m, re) ? m.str() : std::string();
}

std::string where_of(const std::string& name, const std::string& message) {
  const std::string loc = location_in(message);
  return loc.empty() ? name : name + ", " + loc;
}

// Python's range() without allocating past the limits: the engine's own builds the whole list
// first and steps its counter past INT64_MAX near the ends of the range.
jinja::value bounded_range(const jinja::func_args& args) {
  args.ensure_count(1, 3);
  int64_t v[3] = {0, 0, 1};
  for (size_t i = 0; i < args.count(); ++i) {
    const jinja::value a = args.get_pos(i);
    if (!jinja::is_val<jinja::value_int>(a)) throw std::runtime_error("range() arguments must be integers");
    v[args.count() == 1 ? 1 : i] = a->as_int();
  }
  const int64_t start = v[0], stop = v[1], step = v[2];
  if (step == 0) throw std::runtime_error("range() step argument must not be zero");
  // Two's-complement differences are exact in uint64 when the sign says the range is non-empty.
  uint64_t count = 0;
  if (step > 0 && stop > start) count = (uint64_t(stop) - uint64_t(start) - 1) / uint64_t(step) + 1;
  if (step < 0 && stop < start) count = (uint64_t(start) - uint64_t(stop) - 1) / (uint64_t(0) - uint64_t(step)) + 1;
  jinja::check_items_limit(size_t(count), "range()");
  auto out = jinja::mk_val<jinja::value_array>();
  for (uint64_t i = 0; i < count; ++i)
    out->push_back(jinja::mk_val<jinja::value_int>(int64_t(uint64_t(start) + i * uint64_t(step))));
  return out;
}

// Installs the limits for renders on this thread and removes them however the render ends.
class LimitsScope {
 public:
  explicit LimitsScope(jinja::exec_limits* l) { jinja::set_exec_limits(l); }
  ~LimitsScope() { jinja::set_exec_limits(nullptr); }
  LimitsScope(const LimitsScope&) = delete;
  LimitsScope& operator=(const LimitsScope&) = delete;
};

}  // namespace

ChatTemplate::ChatTemplate(std::string source, std::string bos_token, std::string eos_token, std::string name)
    : impl_(std::make_unique<Impl>()) {
  impl_->name = std::move(name);
  impl_->bos = std::move(bos_token);
  impl_->eos = std::move(eos_token);
  if (source.size() > kMaxSourceBytes)
    throw Error(ErrorKind::Unsupported, impl_->name,
                "the chat template is " + std::to_string(source.size()) + " bytes, over the limit of " +
                    std::to_string(kMaxSourceBytes),
                "real chat templates are a few KiB; check that this is the model's template");
  impl_->source = std::move(source);
  try {
    jinja::lexer lexer;
    impl_->program = jinja::parse_from_tokens(lexer.tokenize(impl_->source));
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    throw Error(msg.find("nested deeper") != std::string::npos ? ErrorKind::Unsupported : ErrorKind::Format,
                where_of(impl_->name, msg), "the chat template is not valid Jinja: " + msg,
                "fix the template, or give the prompt as plain text without --chat");
  }
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const ojson& messages, const ChatRenderOptions& opts) const {
  if (!messages.is_array())
    throw Error(ErrorKind::Usage, impl_->name, "the messages must be an array of {role, content} objects");
  if (!opts.extra.is_object())
    throw Error(ErrorKind::Usage, impl_->name, "extra context variables must be a JSON object");
  ojson vars = {{"messages", messages}, {"tools", nullptr}, {"bos_token", impl_->bos}, {"eos_token", impl_->eos},
                {"add_generation_prompt", opts.add_generation_prompt}};
  if (opts.date_string) vars["date_string"] = *opts.date_string;
  for (const auto& [k, v] : opts.extra.items()) vars[k] = v;

  jinja::context ctx(impl_->source);
  if (opts.now) ctx.current_time = *opts.now;
  std::optional<std::string> raised;
  try {
    jinja::global_from_json(ctx, vars, false);
    // raise_exception(msg) is the template refusing the chat: remember the message so that
    // the error names it alone, not the engine's wrapping.
    ctx.set_val("raise_exception", jinja::mk_val<jinja::value_func>(
                                       "raise_exception", [&raised](const jinja::func_args& a) -> jinja::value {
                                         a.ensure_count(1, 1);
                                         raised = a.get_pos(0)->as_string().str();
                                         throw jinja::raised_exception(*raised);
                                       }));
    ctx.set_val("range", jinja::mk_val<jinja::value_func>("range", bounded_range));
  } catch (const std::exception& e) {
    throw Error(ErrorKind::Usage, impl_->name, std::string("cannot pass the messages to the template: ") + e.what());
  }

  jinja::exec_limits limits;
  limits.max_depth = kMaxDepth;
  limits.max_steps = kMaxSteps;
  limits.max_bytes = kMaxBytes;
  limits.max_items = kMaxItems;
  limits.max_seconds = kMaxSeconds;
  std::string out;
  try {
    LimitsScope scope(&limits);
    jinja::runtime runtime(ctx);
    const jinja::value results = runtime.execute(impl_->program);
    out = jinja::runtime::gather_string_parts(results)->as_string().str();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    if (raised)
      throw Error(ErrorKind::Usage, where_of(impl_->name, msg), "the chat template refused the messages: " + *raised,
                  "change the messages to what this template accepts");
    if (limits.exceeded)
      throw Error(ErrorKind::Unsupported, where_of(impl_->name, msg), "the chat template exceeds a limit: " + msg);
    throw Error(ErrorKind::Format, where_of(impl_->name, msg), "rendering the chat template failed: " + msg);
  }
  if (out.size() > kMaxBytes)
    throw Error(ErrorKind::Unsupported, impl_->name,
                "the rendered chat is " + std::to_string(out.size()) + " bytes, over the limit of " + std::to_string(kMaxBytes));
  return out;
}

std::string fallback_chat_text(const ojson& messages, bool add_generation_prompt) {
  if (!messages.is_array() || messages.empty())
    throw Error(ErrorKind::Usage, "messages", "must be a non-empty array of {role, content} objects");
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || m["role"].get_ref<const std::string&>().empty())
      throw Error(ErrorKind::Usage, where, "must be an object with a non-empty string 'role'");
    std::string content;
    const auto it = m.find("content");
    if (it != m.end() && it->is_string()) {
      content = it->get<std::string>();
    } else if (it != m.end() && it->is_array()) {  // [{type: "text", text}]
      for (const auto& part : *it)
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
          content += part["text"].get<std::string>();
    } else if (it != m.end() && !it->is_null()) {
      throw Error(ErrorKind::Usage, where, "'content' must be a string or an array of text parts");
    }
    out += m["role"].get<std::string>() + ": " + content + "\n";
  }
  return add_generation_prompt ? out + "assistant:" : out;
}

ChatPrompt build_chat_prompt(const std::optional<std::string>& chat_template, const Tokenizer& tok,
                             const std::string& name, const ojson& messages, const ChatRenderOptions& opts) {
  ChatPrompt p;
  if (!chat_template) {
    p.text = fallback_chat_text(messages, opts.add_generation_prompt);
    p.template_used = "fallback";
    return p;
  }
  const auto special = [&](int32_t id) { return id >= 0 ? tok.token_bytes(id) : std::string(); };
  const std::string bos = special(tok.bos()), eos = special(tok.eos());
  p.text = ChatTemplate(*chat_template, bos, eos, name).render(messages, opts);
  p.template_used = "model";
  p.encode.parse_special = true;
  if (tok.adds_bos() && !bos.empty() && p.text.rfind(bos, 0) == 0) p.text.erase(0, bos.size());
  if (tok.adds_eos() && !eos.empty() && p.text.size() >= eos.size() &&
      p.text.compare(p.text.size() - eos.size(), eos.size(), eos) == 0)
    p.text.erase(p.text.size() - eos.size());
  return p;
}

ChatTemplates find_chat_template(const GgufFile& f, const std::string& path) {
  static const std::string kKey = "tokenizer.chat_template";
  ChatTemplates t;
  for (const auto& [key, value] : f.metadata()) {
    if (key != kKey && key.rfind(kKey + ".", 0) != 0) continue;
    ChatTemplateSource s{f.get_string(key), path + ": " + key};  // get_string names a key of another type
    if (key == kKey)
      t.main = std::move(s);
    else
      t.named[key.substr(kKey.size() + 1)] = std::move(s);
  }
  return t;
}

namespace {

// tokenizer_config.json's chat_template: a string, or [{name, template}, ...].
void read_config_templates(const fs::path& config, ChatTemplates& t) {
  ojson j;
  try {
    j = ojson::parse(read_small_file(config, "a tokenizer config", kMaxMetadataFileBytes));
  } catch (const ojson::exception& e) {
    throw Error(ErrorKind::Format, config.string(), std::string("is not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("chat_template") || j["chat_template"].is_null()) return;
  const ojson& c = j["chat_template"];
  const std::string where = config.string() + ": chat_template";
  if (c.is_string()) {
    t.main = ChatTemplateSource{c.get<std::string>(), where};
    return;
  }
  if (!c.is_array())
    throw Error(ErrorKind::Format, where, "must be a string or a list of {name, template} objects");
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string w = where + "[" + std::to_string(i) + "]";
    if (!c[i].is_object() || !c[i].contains("name") || !c[i]["name"].is_string() || !c[i].contains("template") ||
        !c[i]["template"].is_string())
      throw Error(ErrorKind::Format, w, "must be an object with string fields 'name' and 'template'");
    ChatTemplateSource s{c[i]["template"].get<std::string>(), w};
    const std::string name = c[i]["name"].get<std::string>();
    if (name == "default")
      t.main = std::move(s);
    else
      t.named[name] = std::move(s);
  }
}

}  // namespace

ChatTemplates find_chat_template(const std::string& folder) {
  ChatTemplates t;
  const fs::path dir(folder);
  std::error_code ec;
  if (fs::is_regular_file(dir / "tokenizer_config.json", ec)) read_config_templates(dir / "tokenizer_config.json", t);
  // transformers saves the template beside the config since v4.43 and prefers that file.
  const auto read_template = [](const fs::path& p) {
    return ChatTemplateSource{read_small_file(p, "a chat template", kMaxMetadataFileBytes), p.string()};
  };
  const fs::path jinja = dir / "chat_template.jinja";
  if (fs::is_regular_file(jinja, ec)) t.main = read_template(jinja);
  const fs::path more = dir / "additional_chat_templates";
  if (fs::is_directory(more, ec))
    for (const auto& e : fs::directory_iterator(more, ec))
      if (e.is_regular_file(ec) && e.path().extension() == ".jinja")
        t.named[e.path().stem().string()] = read_template(e.path());
  return t;
}

}  // namespace tp

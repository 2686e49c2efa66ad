#include "server/openai.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "sampling/record.h"
#include "server/api_util.h"

namespace tp::server {
namespace {

using nlohmann::json;

std::vector<int32_t> prompt_ids(const json& p, const Model& model, std::string* text, std::vector<TokenSpan>* spans) {
  auto encode = [&](const std::string& s) { return encode_text(s, {}, model, text, spans); };
  auto ids_of = [&](const json& a) {
    std::vector<int32_t> ids;
    for (const auto& v : a) {
      if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= model.config.d_vocab)
        throw ApiError(400, "'prompt' token ids must be integers in [0, " + std::to_string(model.config.d_vocab) + ")");
      ids.push_back(v.get<int32_t>());
    }
    return ids;
  };
  if (p.is_string()) return encode(p.get<std::string>());
  if (p.is_array() && !p.empty()) {
    if (p.size() == 1 && p[0].is_string()) return encode(p[0].get<std::string>());
    if (p.size() == 1 && p[0].is_array()) return ids_of(p[0]);
    if (p[0].is_number_integer()) return ids_of(p);
  }
  throw ApiError(400, "'prompt' must be a string, one string in an array, or an array of token ids");
}

std::string new_id(const char* prefix) {
  static std::atomic<unsigned long long> counter{0};
  const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
  return std::string(prefix) + std::to_string(t) + "-" + std::to_string(++counter);
}

// Every sampler field a request may set, once: its name, the endpoints that read it
// (OpenAI's top level, llama-server's top level and /api/run's "sampler", the x_tokenprobe
// extension) and its range (llama.cpp's; OpenAI documents narrower ones for some).
enum FieldSource : unsigned { kOpenAI = 1, kLlama = 2, kExtension = 4 };
using Settings = sampling::SamplerSettings;

struct NumberField {
  const char* name;
  unsigned sources;
  double lo, hi;
  double openai_lo, openai_hi;
  float& (*ref)(Settings&);
};
constexpr NumberField kNumbers[] = {
    {"temperature", kOpenAI | kLlama, -1, 100, 0, 2, [](Settings& s) -> float& { return s.temperature; }},
    {"top_p", kOpenAI | kLlama, 0, 1, 0, 1, [](Settings& s) -> float& { return s.top_p; }},
    {"min_p", kLlama | kExtension, 0, 1, 0, 1, [](Settings& s) -> float& { return s.min_p; }},
    {"typical_p", kLlama | kExtension, 0, 1, 0, 1, [](Settings& s) -> float& { return s.typical_p; }},
    {"repeat_penalty", kLlama | kExtension, 0, 100, 0, 100, [](Settings& s) -> float& { return s.penalties.repeat; }},
    {"frequency_penalty", kOpenAI | kLlama, -100, 100, -2, 2, [](Settings& s) -> float& { return s.penalties.frequency; }},
    {"presence_penalty", kOpenAI | kLlama, -100, 100, -2, 2, [](Settings& s) -> float& { return s.penalties.presence; }},
};

struct IntField {
  const char* name;
  unsigned sources;
  long long lo, hi;
  int32_t& (*ref)(Settings&);
};
constexpr IntField kInts[] = {
    {"top_k", kLlama | kExtension, -1, 1 << 30, [](Settings& s) -> int32_t& { return s.top_k; }},
    {"repeat_last_n", kLlama, -1, 1 << 30, [](Settings& s) -> int32_t& { return s.penalties.last_n; }},
};
constexpr unsigned kSeedSources = kOpenAI | kLlama, kOrderSources = kLlama | kExtension;

// Reads the fields `source` takes from `b` over `s` (absent or null: unchanged); ApiError(400)
// naming a field of the wrong type or out of its range.
void read_sampler(const json& b, FieldSource source, Settings& s) {
  for (const NumberField& f : kNumbers) {
    if (!(f.sources & source)) continue;
    const bool openai = source == kOpenAI;
    float& v = f.ref(s);
    v = float(get_number(b, f.name, v, openai ? f.openai_lo : f.lo, openai ? f.openai_hi : f.hi));
  }
  for (const IntField& f : kInts)
    if (f.sources & source) f.ref(s) = int32_t(get_int(b, f.name, f.ref(s), f.lo, f.hi));
  if (kSeedSources & source)
    s.seed = uint64_t(get_int(b, "seed", (long long)s.seed, std::numeric_limits<long long>::min(),
                              std::numeric_limits<long long>::max()));
  if (!(kOrderSources & source)) return;
  if (b.contains("samplers") && b["samplers"].is_array()) {  // llama-server's ["top_k", "temperature"]
    std::string order;
    for (const auto& n : b["samplers"]) {
      if (!n.is_string()) throw ApiError(400, "'samplers' must hold stage names");
      if (!order.empty()) order.push_back(';');
      order.append(n.get_ref<const std::string&>());
    }
    s.order = order;
  } else {
    s.order = get_string(b, "samplers", s.order, 256);
  }
}

// OpenAI's sampler before the request's fields: temperature and top_p only (top-k, min-p
// and typical-p off), no penalties.
void openai_defaults(Settings& s) {
  s.temperature = 1.0f;
  s.top_p = 1.0f;
  s.top_k = 0;
  s.min_p = 0.0f;
  s.typical_p = 1.0f;
  s.penalties.frequency = 0.0f;
  s.penalties.presence = 0.0f;
}

}  // namespace

void parse_sampler(const json& b, sampling::SamplerSettings& s) { read_sampler(b, kLlama, s); }

namespace {

void apply_logit_bias(const json& b, sampling::SamplerSettings& s, const Model& model) {
  if (!b.contains("logit_bias") || b["logit_bias"].is_null()) return;
  if (!b["logit_bias"].is_object() || b["logit_bias"].size() > 1024)
    throw ApiError(400, "'logit_bias' must be an object mapping token ids to numbers");
  for (const auto& [k, v] : b["logit_bias"].items()) {
    char* end = nullptr;
    const long id = std::strtol(k.c_str(), &end, 10);
    if (k.empty() || *end || id < 0 || id >= model.config.d_vocab || !v.is_number())
      throw ApiError(400, "'logit_bias' key '" + k.substr(0, 32) + "' is not a token id with a number");
    s.logit_bias[int32_t(id)] = std::max(-100.0f, std::min(100.0f, v.get<float>()));
  }
}

// x_tokenprobe: {trace, capture, explain, sampler_records, top_k, min_p, typical_p, repeat_penalty, samplers}
void apply_extension(const json& b, ParsedRequest& r) {
  if (!b.contains("x_tokenprobe") || b["x_tokenprobe"].is_null()) return;
  const json& x = b["x_tokenprobe"];
  if (!x.is_object()) throw ApiError(400, "'x_tokenprobe' must be an object");
  r.trace = get_bool(x, "trace", false);
  r.gen.capture = get_string(x, "capture", "default", 4096);
  r.gen.explain = get_bool(x, "explain", false);
  r.gen.sampler_records = get_bool(x, "sampler_records", false);
  read_sampler(x, kExtension, r.gen.sampler);
}

}  // namespace

std::vector<int32_t> encode_text(const std::string& s, const EncodeOptions& eo, const Model& model, std::string* text,
                                 std::vector<TokenSpan>* spans) {
  *text = s;
  *spans = model.tok().encode_with_spans(s, eo);
  if (spans->empty() && model.tok().bos() >= 0) spans->push_back({model.tok().bos(), 0, 0});
  std::vector<int32_t> ids;
  for (const auto& t : *spans) ids.push_back(t.id);
  return ids;
}

ChatPrompt chat_prompt(const json& body, const Model& model) {
  if (!body.contains("messages")) throw ApiError(400, "'messages' is required");
  const json& messages = body["messages"];
  if (!messages.is_array() || messages.empty()) throw ApiError(400, "'messages' must be a non-empty array");
  ChatRenderOptions opts;
  if (body.contains("chat_template_kwargs") && !body["chat_template_kwargs"].is_null()) {
    if (!body["chat_template_kwargs"].is_object()) throw ApiError(400, "'chat_template_kwargs' must be an object");
    opts.extra = nlohmann::ordered_json(body["chat_template_kwargs"]);
  }
  try {
    return build_chat_prompt(model.chat_template, model.tok(), model.path + ": chat template",
                             nlohmann::ordered_json(messages), opts);
  } catch (const Error& e) {
    throw ApiError(400, std::string("messages: ") + e.what());
  }
}

ParsedRequest parse_request(ApiKind kind, const json& b, const Model& model, int max_tokens_limit) {
  ParsedRequest r;
  r.kind = kind;
  r.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  r.model_name = get_string(b, "model", "", 256);
  r.stream = get_bool(b, "stream", false);
  auto& g = r.gen;
  if (kind == ApiKind::LlamaCompletion) {
    if (!b.contains("prompt")) throw ApiError(400, "'prompt' is required");
    g.prompt = prompt_ids(b["prompt"], model, &g.prompt_text, &g.spans);
    parse_sampler(b, g.sampler);
    const long long n = get_int(b, "n_predict", -1, -1, 1 << 30);
    g.max_tokens = int(n < 0 || n > max_tokens_limit ? max_tokens_limit : n);
    g.top_logprobs = int(get_int(b, "n_probs", 0, 0, 20));
    r.logprobs = g.top_logprobs > 0;
    g.ignore_eos = get_bool(b, "ignore_eos", false);
    r.id = new_id("cmpl-");
  } else {
    if (kind == ApiKind::Chat) {
      const ChatPrompt chat = chat_prompt(b, model);
      g.prompt = encode_text(chat.text, chat.encode, model, &g.prompt_text, &g.spans);
      r.chat_template = chat.template_used;
      r.logprobs = get_bool(b, "logprobs", false);
      g.top_logprobs = int(get_int(b, "top_logprobs", 0, 0, 20));
      if (g.top_logprobs > 0 && !r.logprobs) throw ApiError(400, "'top_logprobs' needs 'logprobs': true");
      const long long mt = get_int(b, "max_completion_tokens", -1, 1, max_tokens_limit);
      g.max_tokens = int(get_int(b, "max_tokens", mt > 0 ? mt : std::min(256, max_tokens_limit), 1, max_tokens_limit));
      r.id = new_id("chatcmpl-");
    } else {
      if (!b.contains("prompt")) throw ApiError(400, "'prompt' is required");
      g.prompt = prompt_ids(b["prompt"], model, &g.prompt_text, &g.spans);
      const long long lp = get_int(b, "logprobs", -1, 0, 20);
      r.logprobs = lp >= 0;
      g.top_logprobs = int(std::max(0LL, lp));
      g.max_tokens = int(get_int(b, "max_tokens", 16, 0, max_tokens_limit));
      if (get_bool(b, "echo", false)) throw ApiError(400, "'echo': true is not supported");
      r.id = new_id("cmpl-");
    }
    if (get_int(b, "n", 1, 1, 1) != 1) throw ApiError(400, "'n' must be 1");
    openai_defaults(g.sampler);
    read_sampler(b, kOpenAI, g.sampler);
    if (b.contains("stream_options") && b["stream_options"].is_object())
      r.include_usage = get_bool(b["stream_options"], "include_usage", false);
  }
  g.stop = get_strings(b, "stop", 4);
  apply_logit_bias(b, g.sampler, model);
  apply_extension(b, r);
  g.logprobs = r.logprobs;
  try {
    sampling::Sampler check(g.sampler);
  } catch (const Error& e) {
    throw ApiError(400, std::string("sampler settings: ") + e.what());
  }
  return r;
}

namespace {

json usage(const ParsedRequest& req, const GenResult& res) {
  const size_t n = res.n_generated;
  return {{"prompt_tokens", req.gen.prompt.size()}, {"completion_tokens", n}, {"total_tokens", req.gen.prompt.size() + n}};
}

json legacy_logprobs(const std::vector<GenToken>& toks, bool records) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offs = json::array(), recs = json::array();
  size_t off = 0;
  for (const auto& t : toks) {
    tokens.push_back(t.logprobs["token"]);
    lps.push_back(t.logprobs["logprob"]);
    json top = json::object();
    for (const auto& a : t.logprobs["top_logprobs"]) top[a["token"].get<std::string>()] = a["logprob"];
    tops.push_back(top);
    offs.push_back(off);
    off += t.bytes.size();
    if (records) recs.push_back(t.logprobs.at("x_tokenprobe"));
  }
  json out = {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
  if (records) out["x_tokenprobe"] = recs;
  return out;
}

json llama_probs(const GenToken& t) {
  json probs = json::array(), top = json::array();
  for (const auto& a : t.logprobs["top_logprobs"]) {
    probs.push_back({{"tok_str", a["token"]}, {"prob", std::exp(a["logprob"].get<double>())}});
    top.push_back(a);
  }
  return {{"id", t.id}, {"token", t.logprobs["token"]}, {"logprob", t.logprobs["logprob"]}, {"bytes", t.logprobs["bytes"]},
          {"top_logprobs", top}, {"content", t.logprobs["token"]}, {"probs", probs}};
}

// The x_tokenprobe fields that whole responses and streams' final chunks share.
json extension(const ParsedRequest& req, const GenResult& res, const std::string& trace_id) {
  json x = {{"finish_reason", res.finish_reason}};
  if (!trace_id.empty()) x["trace"] = trace_id;
  if (!req.chat_template.empty()) x["chat_template"] = req.chat_template;
  return x;
}

json content_logprobs(const GenResult& res) {
  json c = json::array();
  for (const auto& t : res.tokens) c.push_back(t.logprobs);
  return c;
}

}  // namespace

json response_json(const ParsedRequest& req, const GenResult& res, const std::string& trace_id) {
  json x = extension(req, res, trace_id);
  x["stopped_by"] = res.stopped_by;
  if (req.gen.prompt_cropped > 0) x["prompt_cropped"] = req.gen.prompt_cropped;
  if (req.kind == ApiKind::LlamaCompletion) {
    json out = {{"content", res.text}, {"stop", true}, {"model", req.model_name}, {"tokens_predicted", res.n_generated},
                {"tokens_evaluated", req.gen.prompt.size()},
                {"stop_type", !res.stopped_by.empty() ? "word" : res.finish_reason == "stop" ? "eos" : "limit"},
                {"stopping_word", res.stopped_by}, {"x_tokenprobe", x}};
    if (req.logprobs) {
      out["completion_probabilities"] = json::array();
      for (const auto& t : res.tokens) out["completion_probabilities"].push_back(llama_probs(t));
    }
    return out;
  }
  json choice = {{"index", 0}, {"finish_reason", res.finish_reason}, {"logprobs", nullptr}};
  if (req.kind == ApiKind::Chat) {
    choice["message"] = {{"role", "assistant"}, {"content", res.text}};
    if (req.logprobs) choice["logprobs"] = {{"content", content_logprobs(res)}};
  } else {
    choice["text"] = res.text;
    if (req.logprobs) choice["logprobs"] = legacy_logprobs(res.tokens, req.gen.sampler_records);
  }
  return {{"id", req.id}, {"object", req.kind == ApiKind::Chat ? "chat.completion" : "text_completion"},
          {"created", req.created}, {"model", req.model_name}, {"choices", json::array({choice})},
          {"usage", usage(req, res)}, {"x_tokenprobe", x}};
}

json stream_role_chunk(const ParsedRequest& req) {
  json out = stream_chunk(req, nullptr, "");
  out["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
  return out;
}

json stream_chunk(const ParsedRequest& req, const GenToken* tok, const std::string& delta) {
  if (req.kind == ApiKind::LlamaCompletion) {
    json out = {{"content", delta}, {"stop", false}};
    if (req.logprobs && tok) out["completion_probabilities"] = json::array({llama_probs(*tok)});
    return out;
  }
  json choice = {{"index", 0}, {"finish_reason", nullptr}, {"logprobs", nullptr}};
  if (req.kind == ApiKind::Chat) {
    choice["delta"] = {{"content", delta}};
    if (req.logprobs && tok) choice["logprobs"] = {{"content", json::array({tok->logprobs})}};
  } else {
    choice["text"] = delta;
    if (req.logprobs && tok) choice["logprobs"] = legacy_logprobs({*tok}, req.gen.sampler_records);
  }
  json out = {{"id", req.id}, {"object", req.kind == ApiKind::Chat ? "chat.completion.chunk" : "text_completion"},
              {"created", req.created}, {"model", req.model_name}, {"choices", json::array({choice})}};
  if (req.include_usage) out["usage"] = nullptr;  // as OpenAI: null until the usage chunk
  return out;
}

json stream_usage(const ParsedRequest& req, const GenResult& res) {
  json out = stream_chunk(req, nullptr, "");
  out["choices"] = json::array();
  out["usage"] = usage(req, res);
  return out;
}

json stream_final(const ParsedRequest& req, const GenResult& res, const std::string& trace_id) {
  if (req.kind == ApiKind::LlamaCompletion) {
    json out = response_json(req, res, trace_id);
    out["content"] = "";
    out.erase("completion_probabilities");
    return out;
  }
  json out = stream_chunk(req, nullptr, "");
  auto& choice = out["choices"][0];
  choice["finish_reason"] = res.finish_reason;
  if (req.kind == ApiKind::Chat) choice["delta"] = json::object();
  out["x_tokenprobe"] = extension(req, res, trace_id);
  return out;
}

}  // namespace tp::server

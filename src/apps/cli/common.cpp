#include "apps/cli/common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/utf8.h"
#include "hub/download_progress.h"
#include "hub/hub_fetch.h"
#include "io/small_file.h"
#include "loader/loader.h"
#include "tokenizer/chat_template.h"

namespace tp::cli {

namespace fs = std::filesystem;

std::string fetch_from_hub(const std::string& uri, const std::string& hf_repo, bool progress_bar) {
  hub::TerminalProgress progress(stderr, progress_bar || ::isatty(STDERR_FILENO));
  hub::HubSettings settings = hub::HubSettings::from_environment();
  settings.progress = &progress;
  if (!hf_repo.empty()) return hub::fetch_gguf(hub::parse_gguf_repo(hf_repo), settings);
  return hub::fetch(hub::parse_hub_uri(uri), settings);
}

std::string resolve_model(const std::string& given, const std::string& hf_repo) {
  if (!hf_repo.empty() && !given.empty())
    throw Error(ErrorKind::Usage, "-hf " + hf_repo, "both -m and -hf name a model", "give one of them");
  if (!hf_repo.empty() || hub::is_hub_uri(given)) return fetch_from_hub(given, hf_repo);
  if (!given.empty()) return given;
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("TOKENPROBE_MODEL"); env && *env) {
    if (fs::exists(env)) return env;
    tried.push_back(env);
  }
  for (const fs::path& dir : {fs::path("models"), fs::path("../shared/models/real")}) {
    for (const char* name : {"stories260K.gguf", "stories260K.bin"}) {
      const fs::path p = dir / name;
      if (fs::exists(p)) return p.string();
      tried.push_back(p);
    }
  }
  std::string where;
  for (const auto& p : tried) where += "\n    " + p.string();
  throw Error(ErrorKind::NotFound, "default model", "stories260K was not found; looked in:" + where,
              "pass -m MODEL.gguf, set TOKENPROBE_MODEL, or put stories260K.gguf (from Karpathy's "
              "tinyllamas, converted with llama.cpp) in ./models");
}

void ModelOptions::add_to(CLI::App* cmd) {
  cmd->add_option("-m,--model", model,
                  "Model file (.gguf, llama2.c .bin, nanoGPT ckpt.pt), a HuggingFace model folder, or "
                  "hf://OWNER/NAME[@REVISION][/FILE] from the HuggingFace Hub; "
                  "default: stories260K");
  cmd->add_option("--hf-repo", hf_repo, std::string(kHfRepoHelp) + "; also written -hf");
  cmd->add_option("--matmul-inputs", matmul_inputs,
                  "How F16/BF16 weights multiply their activations: weight-type (rounded to the weight's type "
                  "first, as llama.cpp; the default for GGUF) or float (as PyTorch in F32; the default for "
                  "HuggingFace folders and torch checkpoints). docs/numerics.md")
      ->check(CLI::IsMember({"float", "weight-type"}));
  cmd->add_flag("--no-mmap", no_mmap,
                "Read the weights into this process's own memory at load instead of using the file's pages in "
                "place (as llama.cpp's --no-mmap): a slower start, and faster steps where the page cache's memory "
                "reads slower (docs/performance.md)");
  cmd->add_option("--tokenizer", tokenizer, "Tokenizer for a llama2.c .bin (default: tok<vocab>.bin beside it) or a nanoGPT ckpt.pt (meta.pkl, encoder.json, vocab.bpe or their folder; default: beside it, then data/<dataset>/meta.pkl)");
}

namespace {

// --no-mmap's read of each weight file, drawn as a download is: a bar on a terminal, a line
// per file otherwise (an 8 GB file takes 10-25 s).
FileAccess::Progress read_progress() {
  auto bar = std::make_shared<hub::TerminalProgress>(stderr, ::isatty(::fileno(stderr)) != 0, "read into memory");
  return [bar](const std::string& path, uint64_t done, uint64_t total) {
    if (done == 0) bar->start(std::filesystem::path(path).filename().string(), total, 0);
    bar->update(done);
    if (done == total) bar->finish(true);
  };
}

}  // namespace

LoadOptions ModelOptions::load_options() const {
  LoadOptions o{.tokenizer = tokenizer, .weights = no_mmap ? FileAccess(FileMemory::Copied, read_progress()) : FileAccess()};
  if (!matmul_inputs.empty()) o.matmul_inputs = matmul_inputs == "float" ? MatmulInputs::Float : MatmulInputs::WeightType;
  return o;
}

std::unique_ptr<Model> ModelOptions::load() const { return load_model(resolve_model(model, hf_repo), load_options()); }

void PromptOptions::add_to(CLI::App* cmd) {
  cmd->add_option("-p,--prompt", text, "Prompt text");
  cmd->add_option("-f,--file", file, "Read the prompt text from a file");
  cmd->add_option("--tokens", tokens, "Prompt as token ids, e.g. 1,403,407 (instead of text)");
  cmd->add_flag("--no-bos", no_bos, "Do not add BOS even if the model's tokenizer adds it");
  cmd->add_flag("--special", special, "Recognise special tokens such as <s> written in the text");
  cmd->add_flag("--chat", chat, "Give the prompt text as a user message through the model's chat template");
  cmd->add_option("--chat-file", chat_file,
                  "Read the chat from a JSON file (an array of {role, content} messages, or an object with "
                  "\"messages\") and render it with the model's chat template");
}

nlohmann::ordered_json PromptOptions::chat_messages() const {
  if (chat_file.empty())
    return nlohmann::ordered_json::array({{{"role", "user"}, {"content", prompt_text(text, file, "-p/--prompt")}}});
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_small_file(chat_file, "the chat file", kMaxTextInputBytes));
  } catch (const nlohmann::ordered_json::exception& e) {
    throw Error(ErrorKind::Format, chat_file, std::string("is not valid JSON: ") + e.what(),
                "give a JSON array of {\"role\": ..., \"content\": ...} messages");
  }
  if (j.is_object() && j.contains("messages")) j = j["messages"];
  if (!j.is_array() || j.empty())
    throw Error(ErrorKind::Usage, chat_file, "holds no messages",
                "give a JSON array of {\"role\": ..., \"content\": ...} messages, or an object with \"messages\"");
  return j;
}

std::string prompt_text(const std::string& text, const std::string& file, const std::string& option) {
  const std::string t = file.empty() ? text : read_small_file(file, "the prompt file", kMaxTextInputBytes);
  const size_t bad = utf8::first_invalid(t);
  if (bad != std::string::npos)
    throw Error(ErrorKind::Usage, file.empty() ? option : file,
                "the text is not valid UTF-8 (byte " + std::to_string(bad) + " is " + printable(t.substr(bad, 1)) + ")",
                "convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8), or give token ids with --tokens");
  return t;
}

std::string context_end_note(size_t generated, int64_t asked, int64_t n_ctx) {
  return "generation stopped after " + std::to_string(generated) + " of " + std::to_string(asked) +
         " tokens: the context of " + std::to_string(n_ctx) + " positions is full (use a shorter prompt or a smaller -n)";
}

namespace {
// Model::prompt_excess says how much of a long prompt the model's own generate() drops.
std::vector<int32_t> crop_to_block(const Model& m, std::vector<int32_t> ids, std::vector<TokenSpan>* spans) {
  const size_t drop = m.prompt_excess(ids.size());
  if (drop == 0) return ids;
  std::fprintf(stderr, "note: the prompt's %zu tokens are cropped to the last %zu (block_size), as nanoGPT's generate does\n",
               ids.size(), ids.size() - drop);
  if (spans && spans->size() == ids.size()) spans->erase(spans->begin(), spans->begin() + static_cast<std::ptrdiff_t>(drop));
  ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(drop));
  return ids;
}
}  // namespace

std::vector<int32_t> PromptOptions::ids(const Model& m, std::vector<TokenSpan>* spans, std::string* text_out,
                                        std::string* chat_template_used) const {
  const bool is_chat = chat || !chat_file.empty();
  if (!tokens.empty()) {
    if (is_chat) throw Error(ErrorKind::Usage, "--tokens", "cannot be combined with --chat or --chat-file");
    return crop_to_block(m, parse_ids(tokens), nullptr);
  }
  std::string t;
  EncodeOptions eo;
  if (is_chat) {
    const ChatPrompt cp = build_chat_prompt(m.chat_template, m.tok(), m.path + ": chat template", chat_messages());
    if (cp.template_used == "fallback")
      std::fprintf(stderr, "note: the model has no chat template; the chat is written as \"role: content\" lines\n");
    if (chat_template_used) *chat_template_used = cp.template_used;
    t = cp.text;
    eo = cp.encode;
  } else {
    t = prompt_text(text, file, "-p/--prompt");
    eo.parse_special = special;
  }
  if (text_out) *text_out = t;
  if (!m.tokenizer) {
    if (!t.empty()) m.tok();  // throws, saying how to give a tokenizer
    return {1};
  }
  if (no_bos) eo.add_bos = false;
  auto sp = m.tok().encode_with_spans(t, eo);
  std::vector<int32_t> ids;
  for (const auto& s : sp) ids.push_back(s.id);
  if (ids.empty()) {
    if (m.tok().bos() < 0)
      throw Error(ErrorKind::Usage, "prompt", "the prompt is empty and the model has no BOS token", "give a prompt with -p");
    ids.push_back(m.tok().bos());
    sp.push_back({m.tok().bos(), 0, 0});
  }
  if (spans) *spans = sp;
  return crop_to_block(m, std::move(ids), spans);
}

void add_sampler_options(CLI::App* cmd, sampling::SamplerSettings& s) {
  cmd->add_option("--temp,--temperature", s.temperature, "Temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "Top-k (<= 0: off)")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "Top-p (>= 1: off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "Min-p (<= 0: off)")->capture_default_str();
  cmd->add_option("--typical", s.typical_p, "Typical-p (>= 1: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", s.penalties.repeat, "Repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--frequency-penalty", s.penalties.frequency, "Frequency penalty")->capture_default_str();
  cmd->add_option("--presence-penalty", s.penalties.presence, "Presence penalty")->capture_default_str();
  cmd->add_option("--repeat-last-n", s.penalties.last_n, "Penalty window (-1: whole context, 0: off)")->capture_default_str();
  cmd->add_option("--samplers", s.order, "Stage order, llama.cpp style (e.g. penalties;top_k;top_p;min_p;temperature)")->capture_default_str();
  cmd->add_option("-s,--seed", s.seed, "Random seed")->capture_default_str();
}

nlohmann::json sampled_step(const Model& m, const sampling::SampleRecord& rec, int top_logprobs) {
  auto bytes_of = [&](int32_t id) { return m.tokenizer ? m.tokenizer->token_bytes(id) : std::to_string(id); };
  nlohmann::json step = {{"id", rec.chosen_id}, {"text", sampling::utf8_for_json(bytes_of(rec.chosen_id))}};
  step["logprobs"] = sampling::openai_logprobs(rec, bytes_of, top_logprobs);
  return step;
}

std::vector<int32_t> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(start, end - start);
    char* stop = nullptr;
    const long v = std::strtol(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || v < 0 || v > INT32_MAX)
      throw Error(ErrorKind::Usage, "--tokens", "'" + item + "' is not a token id", "give ids as 1,2,3");
    ids.push_back(static_cast<int32_t>(v));
    start = end + 1;
  }
  return ids;
}

namespace {

std::string escape(const std::string& bytes, bool keep_layout) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    // Keep valid multi-byte UTF-8 sequences as they are, except U+0080..U+009F: C1 controls
    // such as CSI and OSC, which a terminal obeys.
    uint32_t cp = 0;
    const size_t len = utf8::decode(bytes, i, cp);
    const bool ok = len > 1 && cp > 0x9F;
    if (ok) {
      out.append(bytes, i, len);
      i += len - 1;
    } else if (keep_layout && (c == '\n' || c == '\t')) {
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F || c >= 0x80) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace

std::string printable(const std::string& bytes) { return escape(bytes, false); }
std::string printable_text(const std::string& bytes) { return escape(bytes, true); }

std::string pad(const std::string& s, size_t width) {
  const size_t cols = utf8::code_points(s);
  return cols < width ? s + std::string(width - cols, ' ') : s;
}

}  // namespace tp::cli

#include "batch/batch_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "analysis/explain.h"
#include "analysis/logit_lens.h"
#include "batch/activation_shard.h"
#include "core/error.h"
#include "io/file_digest.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "io/small_file.h"
#include "probe/capture.h"
#include "probe/observer_chain.h"
#include "runtime/decode_batch.h"
#include "runtime/generate.h"
#include "runtime/session.h"
#include "sampling/record.h"
#include "tokenizer/chat_template.h"
#include "trace/manifest.h"
#include "trace/trace_source.h"

namespace tp {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "tokenprobe-batch";
constexpr int kVersion = 1;

// Writes `text` to path through a temporary name and a rename, so a reader (or a run that
// resumes after kill -9) sees the whole file or none.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) throw Error(ErrorKind::Io, tmp, "cannot write", "check the disk space and permissions");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(ErrorKind::Io, path, "cannot rename into place: " + ec.message());
}

nlohmann::json read_json_file(const std::string& path) {
  try {
    return nlohmann::json::parse(read_small_file(path, "batch record", kMaxMetadataFileBytes));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, path, std::string("not valid JSON: ") + e.what(),
                "the file is damaged; delete it (and its shard's files) to redo that part");
  }
}

// The first setting in which two run.json "settings" objects differ, as a JSON pointer.
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b) {
  const nlohmann::json patch = nlohmann::json::diff(a, b);
  return patch.empty() ? "" : patch[0].value("path", "/");
}

}  // namespace

nlohmann::json ShardRecord::to_json() const {
  return {{"shard", shard}, {"examples", {first, end}}, {"rows", rows}, {"tokens", tokens}, {"bytes", bytes},
          {"seconds", seconds}};
}

ShardRecord ShardRecord::from_json(const nlohmann::json& j, const std::string& where) {
  try {
    ShardRecord r;
    r.shard = j.at("shard").get<int64_t>();
    r.first = j.at("examples").at(0).get<int64_t>();
    r.end = j.at("examples").at(1).get<int64_t>();
    r.rows = j.at("rows").get<int64_t>();
    r.tokens = j.at("tokens").get<int64_t>();
    r.bytes = j.at("bytes").get<uint64_t>();
    r.seconds = j.at("seconds").get<double>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, where, std::string("not a shard record: ") + e.what(),
                "delete it (and its shard's files) to redo the shard");
  }
}

BatchRun::BatchRun(const Model& model, ThreadPool& pool, const std::string& dataset_path, const std::string& out_dir,
                   BatchSettings settings)
    : model_(model), pool_(pool), dataset_(Dataset::open(dataset_path, settings.dataset)), out_(out_dir),
      settings_(std::move(settings)) {
  if (settings_.examples_per_shard < 1)
    throw Error(ErrorKind::Usage, "--examples-per-shard", "must be at least 1");
  if (settings_.n_generate < 0) throw Error(ErrorKind::Usage, "-n", "must not be negative");
  if (settings_.parallel < 1)
    throw Error(ErrorKind::Usage, "--parallel", "must be at least 1, got " + std::to_string(settings_.parallel),
                "1 decodes one example at a time");
  if (settings_.explain && settings_.n_generate < 1)
    throw Error(ErrorKind::Usage, "--explain", "explains the first generated token", "give -n 1 or more");
  if (!settings_.capture.empty()) {
    spec_ = CaptureSpec::parse(settings_.capture);
    spec_->validate_against(model_.config);
    hooks_ = capture_hook_list(*spec_, model_.config);
    row_sel_ = check_spec();
    for (const auto& h : hooks_) {
      uint64_t n = static_cast<uint64_t>(safetensors_dtype_size(h.at("dtype").get<std::string>()));
      for (size_t d = 1; d < h.at("shape").size(); ++d) n *= h.at("shape")[d].get<uint64_t>();
      row_bytes_ += n;
    }
  } else {
    hooks_ = nlohmann::json::array();
  }
  if (!settings_.intervene.empty()) {
    interventions_ = parse_interventions(settings_.intervene, open_trace_source);
    validate_interventions(interventions_, model_.config);
  }
  const auto [model_size, model_sha] = model_identity(model_.path);
  const sampling::Sampler check_sampler(settings_.sampler);  // refuses bad settings before anything runs
  nlohmann::json s = {
      {"model", {{"size", model_size}, {"sha256", model_sha}, {"architecture", model_.config.architecture}}},
      {"tokenizer", model_.tokenizer ? model_.tokenizer->summary() : "none"},
      {"dataset",
       {{"sha256", sha256_file(dataset_path)},
        {"format", dataset_.format() == DatasetFormat::Jsonl ? "jsonl" : "text"},
        {"field", settings_.dataset.field},
        {"examples", dataset_.size()}}},
      {"capture", settings_.capture},
      {"intervene", settings_.intervene},
      {"hooks", hooks_},
      {"n_generate", settings_.n_generate},
      {"stop_at_eog", settings_.stop_at_eog},
      {"sampler", sampler_settings_json(settings_.sampler)},
      {"top_logprobs", settings_.top_logprobs},
      {"prompt_logprobs", settings_.prompt_logprobs},
      {"explain", settings_.explain},
      {"max_prompt_tokens", settings_.max_prompt_tokens},
      {"examples_per_shard", settings_.examples_per_shard},
      {"max_batch", settings_.max_batch},
  };
  run_json_ = {{"format", kFormat}, {"version", kVersion}, {"settings", s},
               {"model_path", model_.path}, {"dataset_path", dataset_path}};
  const std::string run_path = out_ + "/run.json";
  if (fs::exists(run_path)) {
    const nlohmann::json before = read_json_file(run_path);
    if (before.value("format", "") != kFormat)
      throw Error(ErrorKind::Usage, run_path, "is not a tokenprobe batch run", "give another --out folder");
    const std::string diff = first_difference(before.value("settings", nlohmann::json()), s);
    if (!diff.empty())
      throw Error(ErrorKind::Usage, run_path, "the folder holds a run with other settings (first difference: " + diff + ")",
                  "resume with the same model, dataset and options, or give another --out folder");
  } else if (fs::exists(out_) && !fs::is_empty(out_)) {
    throw Error(ErrorKind::Usage, out_, "exists and holds no tokenprobe batch run", "give a new or empty --out folder");
  }
}

void BatchRun::create_output() {
  if (created_) return;
  std::error_code ec;
  fs::create_directories(out_ + "/shards", ec);
  if (ec) throw Error(ErrorKind::Io, out_, "cannot create the output folder: " + ec.message());
  if (!fs::exists(out_ + "/run.json")) write_atomically(out_ + "/run.json", run_json_.dump(2) + "\n");
  created_ = true;
}

HookSelection BatchRun::check_spec() const {
  for (const auto& [h, layer] : hooks_in_pass_order(model_.config)) {
    if (!hook_available(h, model_.config)) continue;
    const auto sel = spec_->select(h, layer);
    if (!sel) continue;
    if (hook_keys_axis(h) || hook_rows_axis(h) != 0)
      throw Error(ErrorKind::Usage, "--capture", hook_name(h, layer) + " has one column per key, which differs between examples",
                  "activation datasets keep rows of one width: leave attention patterns and scores out "
                  "(e.g. 'blocks.*.hook_resid_post'), or use `tokenprobe trace` for them");
  }
  // A row is a token: every hook keeps the same positions, or rows could not be shared.
  std::optional<HookSelection> first;
  std::string first_name;
  for (const auto& [h, layer] : hooks_in_pass_order(model_.config)) {
    if (!hook_available(h, model_.config)) continue;
    const auto sel = spec_->select(h, layer);
    if (!sel) continue;
    if (!first) {
      first = sel;
      first_name = hook_name(h, layer);
    } else if (sel->pos != first->pos || sel->positions.spans != first->positions.spans) {
      throw Error(ErrorKind::Usage, "--capture",
                  hook_name(h, layer) + " keeps other positions than " + first_name,
                  "give every clause the same pos= (a row of the dataset is one token)");
    }
  }
  if (!first) throw Error(ErrorKind::Usage, "--capture", "selects no hook of this model");
  return *first;
}

int64_t BatchRun::n_shards() const {
  return (dataset_.size() + settings_.examples_per_shard - 1) / settings_.examples_per_shard;
}

std::vector<int64_t> BatchRun::shards_for(int64_t i, int64_t n) const {
  if (n < 1 || i < 0 || i >= n)
    throw Error(ErrorKind::Usage, "--shard", std::to_string(i) + "/" + std::to_string(n) + " is not a share",
                "give I/N with 0 <= I < N");
  std::vector<int64_t> out;
  for (int64_t j = i; j < n_shards(); j += n) out.push_back(j);
  return out;
}

std::string BatchRun::shard_name(int64_t shard) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(shard));
  return buf;
}

std::string BatchRun::shard_path(int64_t shard, const std::string& suffix) const {
  return out_ + "/shards/" + shard_name(shard) + suffix;
}

bool BatchRun::shard_done(int64_t shard) const { return fs::exists(shard_path(shard, ".json")); }

std::vector<int32_t> BatchRun::prompt_ids(const Example& ex, int64_t* cut) const {
  std::vector<int32_t> ids;
  if (!model_.tokenizer) model_.tok();  // throws, saying how to give a tokenizer
  if (!ex.messages.is_null()) {
    const ChatPrompt cp = build_chat_prompt(model_.chat_template, model_.tok(), model_.path + ": chat template", ex.messages);
    for (const auto& s : model_.tok().encode_with_spans(cp.text, cp.encode)) ids.push_back(s.id);
  } else {
    for (const auto& s : model_.tok().encode_with_spans(ex.text, EncodeOptions{})) ids.push_back(s.id);
  }
  if (ids.empty()) {
    if (model_.tok().bos() < 0)
      throw Error(ErrorKind::Usage, dataset_.path() + ":" + std::to_string(ex.line), "the prompt is empty and the model has no BOS token");
    ids.push_back(model_.tok().bos());
  }
  int64_t keep = model_.config.n_ctx - std::max(settings_.n_generate, 0);
  if (settings_.max_prompt_tokens > 0) keep = std::min(keep, settings_.max_prompt_tokens);
  keep = std::max<int64_t>(keep, 1);
  *cut = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - keep);
  if (*cut > 0) ids.resize(static_cast<size_t>(keep));
  return ids;
}

BatchEstimate BatchRun::estimate(const std::vector<int64_t>& shards) const {
  BatchEstimate e;
  for (int64_t j : shards) {
    const int64_t end = std::min(dataset_.size(), (j + 1) * settings_.examples_per_shard);
    for (int64_t i = j * settings_.examples_per_shard; i < end; ++i) {
      int64_t cut = 0;
      const auto P = static_cast<int64_t>(prompt_ids(dataset_.example(i), &cut).size());
      ++e.examples;
      e.prompt_tokens += P;
      if (!spec_) continue;
      // The prompt's pass, then one pass per generated token but the last (never run).
      const int64_t n_gen = std::min<int64_t>(settings_.n_generate, model_.config.n_ctx - P);
      int64_t rows = static_cast<int64_t>(select_positions(*row_sel_, 0, P, P).size());
      for (int64_t p = P; p < P + n_gen - 1; ++p) rows += static_cast<int64_t>(select_positions(*row_sel_, p, 1, P).size());
      e.max_rows += rows;
    }
  }
  e.max_bytes = static_cast<uint64_t>(e.max_rows) * row_bytes_;
  return e;
}

struct BatchRun::InFlight {
  InFlight(int64_t index, Session& s, Example e) : i(index), session(s), ex(std::move(e)) {}
  int64_t i;
  Session& session;
  Example ex;
  std::vector<int32_t> prompt;
  int64_t cut = 0;  // prompt tokens cut off
  std::optional<CaptureObserver> capture;
  std::optional<analysis::ExplainCapture> explainer;
  std::optional<InterventionObserver> intervene;
  std::optional<ObserverChain> observers;
  std::optional<sampling::Sampler> sampler;
  nlohmann::json prompt_lp, content = nlohmann::json::array(), explanation;
  int step = 0;                          // tokens chosen so far
  std::optional<GenerationSteps> steps;  // none without -n
  bool going_on = false;                 // steps->next() is still to run
  int64_t tokens_run = 0;

  // Before the pass that runs steps->next(): the observers label it as generate()'s step k.
  void begin_step() {
    const std::string pass = "step." + std::to_string(step);
    if (capture) capture->begin_pass(pass);
    if (intervene) intervene->begin_pass(pass);
  }
};

std::unique_ptr<BatchRun::InFlight> BatchRun::start_example(int64_t i, Session& session, ActivationShard* acts) const {
  const ModelConfig& cfg = model_.config;
  auto f = std::make_unique<InFlight>(i, session, dataset_.example(i));
  f->prompt = prompt_ids(f->ex, &f->cut);
  const std::vector<int32_t>& prompt = f->prompt;
  const auto P = static_cast<int64_t>(prompt.size());
  session.reset();
  if (acts) f->capture.emplace(*spec_, cfg, P, *acts);
  if (settings_.explain) f->explainer.emplace(model_, pool_);
  // Interventions first, so that capture and explain see the values the model continued from.
  if (!interventions_.empty()) {
    std::vector<Intervention> iv = interventions_;
    prepare_interventions(iv, cfg, model_.path, prompt, settings_.n_generate,
                          [&](Observer& mean, bool all) { observe_prompt(model_, pool_, prompt, mean, all); });
    f->intervene.emplace(std::move(iv), cfg, P);
  }
  // No observer at all unless one is asked for: DecodeBatch runs observed sessions alone.
  if (f->intervene || f->capture || f->explainer)
    f->observers.emplace(std::vector<Observer*>{f->intervene ? &*f->intervene : nullptr,
                                                f->capture ? &*f->capture : nullptr,
                                                f->explainer ? &*f->explainer : nullptr});
  session.set_observer(f->observers ? &*f->observers : nullptr);
  sampling::SamplerSettings ss = settings_.sampler;
  ss.seed = settings_.sampler.seed + static_cast<uint64_t>(i);
  ss.flip_margins = false;
  f->sampler.emplace(ss);

  const bool all = settings_.prompt_logprobs || (spec_ && wants_all_prompt_logits(*spec_, cfg, P));
  std::vector<float> logits = session.eval(prompt, all ? Session::Logits::All : Session::Logits::Last);
  if (settings_.prompt_logprobs) {
    nlohmann::json lps = nlohmann::json::array({nullptr});
    double sum = 0;
    for (int64_t p = 1; p < P; ++p) {
      const double lp = analysis::log_softmax(logits.data() + (p - 1) * cfg.d_vocab, cfg.d_vocab)[size_t(prompt[size_t(p)])];
      lps.push_back(lp);
      sum += lp;
    }
    f->prompt_lp = {{"tokens", lps}, {"sum", sum}};
  }
  if (all) logits.erase(logits.begin(), logits.end() - cfg.d_vocab);
  if (settings_.n_generate <= 0) return f;

  InFlight* g = f.get();
  auto choose = [this, g](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const sampling::SampleRecord r = g->sampler->sample(logits.data(), model_.config.d_vocab, history);
    nlohmann::json lp = sampling::openai_logprobs(
        r, [&](int32_t id) { return model_.tokenizer->token_bytes(id); }, settings_.top_logprobs);
    if (g->explainer && g->step == 0) {
      nlohmann::json s = {{"id", r.chosen_id}, {"logprobs", lp}};
      analysis::add_explanation(s, *g->explainer, history, 0);
      g->explanation = std::move(s["explain"]);
    }
    lp.erase("x_tokenprobe");  // the flight record stays with `trace`: a dataset keeps OpenAI's fields
    g->content.push_back(std::move(lp));
    ++g->step;
    return r.chosen_id;
  };
  f->steps.emplace(prompt, choose, model_stop_rule(model_, settings_.n_generate, settings_.stop_at_eog));
  f->going_on = f->steps->take(logits, session.n_past(), session.n_ctx());
  return f;
}

std::string BatchRun::finish_example(InFlight& f, int64_t shard, ActivationShard* acts, std::ostringstream& index) const {
  const GenerateResult gen = f.steps ? f.steps->result() : GenerateResult{};
  nlohmann::json res = {{"example", f.i}, {"id", f.ex.id}, {"line", f.ex.line}, {"prompt_tokens", int64_t(f.prompt.size())}};
  if (f.cut > 0) res["truncated_tokens"] = f.cut;
  if (settings_.n_generate > 0) {
    std::string text;
    StreamDecoder dec(*model_.tokenizer);
    for (int32_t id : gen.generated)
      if (!model_.tokenizer->is_eog(id)) text += dec.feed(id);
    text += dec.flush();
    res["generated"] = {{"text", sampling::utf8_for_json(text)}, {"ids", gen.generated},
                        {"stop_reason", stop_reason_name(gen.reason)}};
    res["logprobs"] = {{"content", f.content}};
  }
  if (!f.prompt_lp.is_null()) res["prompt_logprobs"] = f.prompt_lp;
  if (!f.explanation.is_null()) res["explain"] = std::move(f.explanation);
  std::vector<int32_t> ran = f.prompt;
  ran.insert(ran.end(), gen.generated.begin(), gen.generated.end());
  f.tokens_run = static_cast<int64_t>(ran.size()) - (gen.generated.empty() ? 0 : 1);  // the last chosen is never run
  if (acts) {
    const auto rows = acts->end_example(f.i, ran);
    res["rows"] = {rows.first_row, rows.rows};
    nlohmann::json tokens = nlohmann::json::array();
    for (int64_t p : rows.positions) tokens.push_back(ran[size_t(p)]);
    index << nlohmann::json{{"example", f.i}, {"id", f.ex.id}, {"shard", shard}, {"row", rows.first_row},
                            {"rows", rows.rows}, {"positions", rows.positions}, {"tokens", tokens}}.dump()
          << '\n';
  }
  return res.dump();
}

ShardRecord BatchRun::run_shard(int64_t shard, const std::function<void(int64_t, int64_t)>& progress) {
  if (shard < 0 || shard >= n_shards())
    throw Error(ErrorKind::Usage, "shard " + std::to_string(shard), "does not exist",
                "the dataset has " + std::to_string(n_shards()) + " shards");
  const std::string record_path = shard_path(shard, ".json");
  if (fs::exists(record_path)) return ShardRecord::from_json(read_json_file(record_path), record_path);
  create_output();
  const auto t0 = std::chrono::steady_clock::now();
  ShardRecord rec;
  rec.shard = shard;
  rec.first = shard * settings_.examples_per_shard;
  rec.end = std::min(dataset_.size(), rec.first + settings_.examples_per_shard);

  // Whatever an interrupted run of this shard left behind is redone from scratch.
  const std::string tmp_dir = shard_path(shard, ".tmp");
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  for (const char* stale : {".results.jsonl.tmp", ".index.jsonl.tmp", ".safetensors.partial", ".json.tmp"})
    fs::remove(shard_path(shard, stale), ec);
  fs::create_directories(tmp_dir, ec);
  if (ec) throw Error(ErrorKind::Io, tmp_dir, "cannot create: " + ec.message());
  std::optional<ActivationShard> acts;
  if (spec_) acts.emplace(hooks_, tmp_dir);
  std::ostringstream results, index;

  // Up to `parallel` examples in flight, each on a session of its own: a new example's prompt
  // runs alone as it joins, then every example in flight runs its next token in one
  // DecodeBatch step. Results are written in example order whatever order examples end in.
  const bool observed = spec_ || !interventions_.empty() || settings_.explain;
  const int64_t n_slots = observed || settings_.n_generate <= 0
                              ? 1
                              : std::min<int64_t>(settings_.parallel, rec.end - rec.first);
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<Session*> idle;
  for (int64_t k = 0; k < n_slots; ++k) {
    sessions.push_back(std::make_unique<Session>(model_, pool_, SessionOptions{.max_batch = settings_.max_batch}));
    idle.push_back(sessions.back().get());
  }
  std::optional<DecodeBatch> batch;
  if (n_slots > 1) batch.emplace(model_, pool_, n_slots);
  std::vector<std::string> lines(size_t(rec.end - rec.first));
  std::vector<std::unique_ptr<InFlight>> live;  // in the order they joined
  int64_t next = rec.first, finished = 0;
  auto finish = [&](InFlight& f) {
    lines[size_t(f.i - rec.first)] = finish_example(f, shard, acts ? &*acts : nullptr, index);
    rec.tokens += f.tokens_run;
    idle.push_back(&f.session);
    if (progress) progress(++finished, rec.tokens);
  };
  while (next < rec.end || !live.empty()) {
    while (next < rec.end && !idle.empty()) {
      Session& session = *idle.back();
      idle.pop_back();
      std::unique_ptr<InFlight> f = start_example(next++, session, acts ? &*acts : nullptr);
      if (f->steps && f->going_on) live.push_back(std::move(f));
      else finish(*f);
    }
    if (live.empty()) continue;
    for (auto& f : live) f->begin_step();
    std::vector<std::vector<float>> logits;
    if (batch) {
      std::vector<Session*> ss;
      std::vector<int32_t> tokens;
      for (auto& f : live) {
        ss.push_back(&f->session);
        tokens.push_back(f->steps->next());
      }
      logits = batch->step(ss, tokens);
    } else {
      logits.push_back(live[0]->session.eval({live[0]->steps->next()}));
    }
    for (size_t j = 0; j < live.size(); ++j) {
      InFlight& f = *live[j];
      f.going_on = f.steps->take(logits[j], f.session.n_past(), f.session.n_ctx());
      if (!f.going_on) finish(f);
    }
    std::erase_if(live, [](const std::unique_ptr<InFlight>& f) { return !f->going_on; });
  }
  for (auto& session : sessions) session->set_observer(nullptr);
  for (const std::string& line : lines) results << line << '\n';

  // Data files first, the record last: the record's rename is what makes the shard exist.
  write_atomically(shard_path(shard, ".results.jsonl"), results.str());
  rec.bytes += results.str().size();
  if (acts) {
    write_atomically(shard_path(shard, ".index.jsonl"), index.str());
    rec.bytes += index.str().size();
    rec.bytes += acts->write(shard_path(shard, ".safetensors"),
                             {{"format", "tokenprobe-activations"}, {"shard", std::to_string(shard)}});
    rec.rows = acts->rows();
  }
  acts.reset();
  fs::remove_all(tmp_dir, ec);
  rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_atomically(record_path, rec.to_json().dump() + "\n");
  return rec;
}

bool BatchRun::write_manifest_if_complete() {
  create_output();  // an empty dataset has no shard to create it
  std::vector<ShardRecord> recs;
  for (int64_t j = 0; j < n_shards(); ++j) {
    const std::string p = shard_path(j, ".json");
    if (!fs::exists(p)) return false;
    recs.push_back(ShardRecord::from_json(read_json_file(p), p));
  }
  nlohmann::json shards = nlohmann::json::array();
  int64_t rows = 0, tokens = 0;
  uint64_t bytes = 0;
  for (const auto& r : recs) {
    const std::string name = shard_name(r.shard);
    nlohmann::json s = {{"shard", r.shard}, {"examples", {r.first, r.end}}, {"rows", r.rows}, {"tokens", r.tokens},
                        {"results", "shards/" + name + ".results.jsonl"}};
    if (spec_) {
      s["index"] = "shards/" + name + ".index.jsonl";
      s["activations"] = "shards/" + name + ".safetensors";
    }
    shards.push_back(s);
    rows += r.rows;
    tokens += r.tokens;
    bytes += r.bytes;
  }
  nlohmann::json m = run_json_;
  m["examples"] = dataset_.size();
  m["rows"] = rows;
  m["tokens"] = tokens;
  m["bytes"] = bytes;
  m["shards"] = shards;
  write_atomically(out_ + "/manifest.json", m.dump(2) + "\n");
  return true;
}

}  // namespace tp

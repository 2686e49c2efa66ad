#include "batch/batch_run.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "analysis/explain.h"
#include "analysis/logit_lens.h"
#include "batch/activation_shard.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "io/small_file.h"
#include "probe/capture.h"
#include "probe/observer_chain.h"
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

ShardRecord BatchRun::run_shard(int64_t shard, const std::function<void(int64_t, int64_t)>& progress) {
  if (shard < 0 || shard >= n_shards())
    throw Error(ErrorKind::Usage, "shard " + std::to_string(shard), "does not exist",
                "the dataset has " + std::to_string(n_shards()) + " shards");
  const std::string record_path = shard_path(shard, ".json");
  if (fs::exists(record_path)) return ShardRecord::from_json(read_json_file(record_path), record_path);
  create_output();
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& cfg = model_.config;
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

  Session session(model_, pool_, {.max_batch = settings_.max_batch});
  const auto bytes_of = [&](int32_t id) { return model_.tokenizer->token_bytes(id); };
  for (int64_t i = rec.first; i < rec.end; ++i) {
    const Example ex = dataset_.example(i);
    int64_t cut = 0;
    std::vector<int32_t> prompt = prompt_ids(ex, &cut);
    const auto P = static_cast<int64_t>(prompt.size());
    session.reset();
    std::optional<CaptureObserver> capture;
    if (acts) capture.emplace(*spec_, cfg, P, *acts);
    std::optional<analysis::ExplainCapture> explainer;
    if (settings_.explain) explainer.emplace(model_, pool_);
    // Interventions first, so that capture and explain see the values the model continued from.
    std::optional<InterventionObserver> intervene;
    if (!interventions_.empty()) {
      std::vector<Intervention> iv = interventions_;
      prepare_interventions(iv, cfg, model_.path, prompt, settings_.n_generate,
                            [&](Observer& mean, bool all) { observe_prompt(model_, pool_, prompt, mean, all); });
      intervene.emplace(std::move(iv), cfg, P);
    }
    ObserverChain observers({intervene ? &*intervene : nullptr, capture ? &*capture : nullptr,
                             explainer ? &*explainer : nullptr});
    session.set_observer(&observers);
    sampling::SamplerSettings ss = settings_.sampler;
    ss.seed = settings_.sampler.seed + static_cast<uint64_t>(i);
    ss.flip_margins = false;
    sampling::Sampler sampler(ss);

    nlohmann::json prompt_lp;
    GenerateHooks hooks;
    hooks.eval_prompt = [&] {
      const bool all = settings_.prompt_logprobs || (spec_ && wants_all_prompt_logits(*spec_, cfg, P));
      std::vector<float> logits = session.eval(prompt, all ? Session::Logits::All : Session::Logits::Last);
      if (!all) return logits;
      if (settings_.prompt_logprobs) {
        prompt_lp = nlohmann::json::array({nullptr});
        double sum = 0;
        for (int64_t p = 1; p < P; ++p) {
          const double lp = analysis::log_softmax(logits.data() + (p - 1) * cfg.d_vocab, cfg.d_vocab)[size_t(prompt[size_t(p)])];
          prompt_lp.push_back(lp);
          sum += lp;
        }
        prompt_lp = {{"tokens", prompt_lp}, {"sum", sum}};
      }
      logits.erase(logits.begin(), logits.end() - cfg.d_vocab);
      return logits;
    };
    int step = 0;
    hooks.eval_step = [&](int32_t id, int k) {
      if (capture) capture->begin_pass("step." + std::to_string(k));
      if (intervene) intervene->begin_pass("step." + std::to_string(k));
      return session.eval({id});
    };
    nlohmann::json content = nlohmann::json::array();
    nlohmann::json explanation;
    auto choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
      const sampling::SampleRecord r = sampler.sample(logits.data(), cfg.d_vocab, history);
      nlohmann::json lp = sampling::openai_logprobs(r, bytes_of, settings_.top_logprobs);
      if (explainer && step == 0) {
        nlohmann::json s = {{"id", r.chosen_id}, {"logprobs", lp}};
        analysis::add_explanation(s, *explainer, history, 0);
        explanation = std::move(s["explain"]);
      }
      lp.erase("x_tokenprobe");  // the flight record stays with `trace`: a dataset keeps OpenAI's fields
      content.push_back(std::move(lp));
      ++step;
      return r.chosen_id;
    };
    const GenerateResult gen =
        generate(session, prompt, choose, model_stop_rule(model_, settings_.n_generate, settings_.stop_at_eog), hooks);

    nlohmann::json res = {{"example", i}, {"id", ex.id}, {"line", ex.line}, {"prompt_tokens", P}};
    if (cut > 0) res["truncated_tokens"] = cut;
    if (settings_.n_generate > 0) {
      std::string text;
      StreamDecoder dec(*model_.tokenizer);
      for (int32_t id : gen.generated)
        if (!model_.tokenizer->is_eog(id)) text += dec.feed(id);
      text += dec.flush();
      res["generated"] = {{"text", sampling::utf8_for_json(text)}, {"ids", gen.generated},
                          {"stop_reason", stop_reason_name(gen.reason)}};
      res["logprobs"] = {{"content", content}};
    }
    if (!prompt_lp.is_null()) res["prompt_logprobs"] = prompt_lp;
    if (!explanation.is_null()) res["explain"] = std::move(explanation);
    std::vector<int32_t> ran = prompt;
    ran.insert(ran.end(), gen.generated.begin(), gen.generated.end());
    rec.tokens += static_cast<int64_t>(ran.size()) - (gen.generated.empty() ? 0 : 1);  // the last chosen is never run
    if (acts) {
      const auto rows = acts->end_example(i, ran);
      res["rows"] = {rows.first_row, rows.rows};
      nlohmann::json tokens = nlohmann::json::array();
      for (int64_t p : rows.positions) tokens.push_back(ran[size_t(p)]);
      index << nlohmann::json{{"example", i}, {"id", ex.id}, {"shard", shard}, {"row", rows.first_row},
                              {"rows", rows.rows}, {"positions", rows.positions}, {"tokens", tokens}}.dump()
            << '\n';
    }
    results << res.dump() << '\n';
    if (progress) progress(i - rec.first + 1, rec.tokens);
  }
  session.set_observer(nullptr);

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

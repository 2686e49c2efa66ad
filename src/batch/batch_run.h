// `tokenprobe batch`: a dataset of prompts through one model, in shards of consecutive
// examples, each shard's results (generated text, OpenAI logprobs, prompt logprobs) as JSONL
// and, with a capture spec, an activation dataset: the chosen hooks' rows in one safetensors
// file per shard, indexed by a JSONL file (example, id, shard, rows, positions, tokens). The
// layout is docs/batch.md's.
//
// Shards are numbered by example (shard j holds examples [j*K, (j+1)*K)), so any process can
// run any shard and the result does not depend on which did: the sampler of example i is
// seeded with seed + i, and nothing written into a shard's data files depends on time or
// place. A shard becomes visible when its record (shards/NNNNNN.json) is renamed into place,
// after its data files were; an interrupted shard leaves only temporary files, which the next
// run of that shard removes. The output folder's run.json pins the settings, so that a resumed
// or parallel run cannot mix models, datasets or capture specs. When every shard has a record,
// manifest.json lists them all, once each.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "batch/dataset.h"
#include "core/thread_pool.h"
#include "probe/capture_spec.h"
#include "probe/intervention.h"
#include "runtime/model.h"
#include "sampling/sampler.h"

namespace tp {

class ActivationShard;
class Session;

struct BatchSettings {
  DatasetOptions dataset;
  // Hooks to store for every example (capture spec syntax, probe/capture_spec.h); empty: no
  // activation dataset. Every hook must keep the same positions (a row is a token) and have
  // rows of one width (attention patterns, one column per key, do not).
  std::string capture;
  // Interventions applied to every example (probe/intervention.h's syntax: zero, mean, scale,
  // add, patch, ban, force); mean() takes the mean over each example's own prompt.
  std::string intervene;
  int n_generate = 0;  // tokens generated per example after its prompt (0: the prompt only)
  bool stop_at_eog = true;
  sampling::SamplerSettings sampler;  // example i is sampled with seed sampler.seed + i
  int top_logprobs = 0;               // alternatives listed per generated token
  bool prompt_logprobs = false;       // each prompt token's log-probability given the ones before
  bool explain = false;               // the explain record of each example's first generated token
  // Prompts longer than this many tokens keep their first max_prompt_tokens (0: as many as the
  // context leaves room for after n_generate); the result says how many were cut.
  int64_t max_prompt_tokens = 0;
  int64_t examples_per_shard = 1024;
  int64_t max_batch = 512;
  // Examples decoded together (runtime/decode_batch.h: one weight read per step for all of
  // them), each with a session of its own. Results do not depend on it (each example's logits
  // equal its run alone bit for bit), so run.json does not pin it. Runs that observe the
  // model (--capture, --intervene, --explain) decode one example at a time.
  int parallel = 1;
};

// What a finished shard's record (shards/NNNNNN.json) says.
struct ShardRecord {
  int64_t shard = 0;
  int64_t first = 0, end = 0;  // examples [first, end)
  int64_t rows = 0;            // activation rows (tokens kept)
  int64_t tokens = 0;          // tokens run (prompts and generated)
  uint64_t bytes = 0;          // of its files
  double seconds = 0;
  nlohmann::json to_json() const;
  static ShardRecord from_json(const nlohmann::json& j, const std::string& where);
};

struct BatchEstimate {
  int64_t examples = 0;
  int64_t prompt_tokens = 0;
  int64_t max_rows = 0;         // rows at most (generation may stop early)
  uint64_t max_bytes = 0;       // activation bytes at most
};

class BatchRun {
 public:
  // Opens the dataset and checks the capture spec against the model, and that the run.json
  // already in out_dir has the same settings (Error(Usage) naming the first that differs), or
  // that out_dir is new or empty. The folder and its run.json are created when the first shard
  // runs. The model and pool are the caller's and must outlive it.
  BatchRun(const Model& model, ThreadPool& pool, const std::string& dataset_path, const std::string& out_dir,
           BatchSettings settings);

  int64_t n_examples() const { return dataset_.size(); }
  int64_t n_shards() const;
  // The shards that `--shard i/n` runs: j with j % n == i.
  std::vector<int64_t> shards_for(int64_t i, int64_t n) const;
  bool shard_done(int64_t shard) const;
  std::string shard_name(int64_t shard) const;  // "000003"
  // Bytes and rows the shards' activations take at most (each prompt is tokenized).
  BatchEstimate estimate(const std::vector<int64_t>& shards) const;

  // Runs one shard and makes it visible; `progress` is called after each example with the
  // examples done in this shard and the tokens run so far. A finished shard is not redone.
  ShardRecord run_shard(int64_t shard, const std::function<void(int64_t examples, int64_t tokens)>& progress = {});

  // Writes manifest.json when every shard has a record; returns whether it did. Safe to call
  // from several processes: each writes the same bytes through a rename.
  bool write_manifest_if_complete();
  const std::string& out_dir() const { return out_; }

 private:
  const Model& model_;
  ThreadPool& pool_;
  Dataset dataset_;
  std::string out_;
  BatchSettings settings_;
  std::optional<CaptureSpec> spec_;
  std::vector<Intervention> interventions_;  // parsed and checked once; prepared per example
  nlohmann::json hooks_;     // capture_hook_list of the spec (one entry per stored tensor)
  nlohmann::json run_json_;  // run.json: what every process of this run must agree on

  // One example from its prompt to its result line (batch_run.cpp).
  struct InFlight;
  std::unique_ptr<InFlight> start_example(int64_t i, Session& session, ActivationShard* acts) const;
  std::string finish_example(InFlight& f, int64_t shard, ActivationShard* acts, std::ostringstream& index) const;

  bool created_ = false;
  void create_output();  // the folder, shards/ and run.json, once
  std::vector<int32_t> prompt_ids(const Example& ex, int64_t* cut) const;
  std::string shard_path(int64_t shard, const std::string& suffix) const;
  // Refuses hooks without fixed-width rows and clauses keeping other positions; returns
  // the positions every hook keeps.
  HookSelection check_spec() const;
  std::optional<HookSelection> row_sel_;
  uint64_t row_bytes_ = 0;  // one row of every hook
};

}  // namespace tp

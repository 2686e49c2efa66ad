// Writes small seed inputs for the fuzz targets (run_fuzzers.sh builds and runs it):
//   make_seeds OUT_DIR [SHARED_DIR]
// OUT_DIR/gguf/: GGUF files from GgufWriter covering every value type, nested arrays,
//   several tensor types and alignments; plus, for each .gguf under SHARED_DIR, a
//   miniature with the same keys and tensor names (arrays cut to 8 items, tensors cut to
//   one block) so the fuzzer starts from real-world metadata in a few KiB.
// OUT_DIR/npy/: .npy files of each supported dtype and header version.
// OUT_DIR/trace_{manifest,steps,shard}/: the parts of trace_fuzz.h's small trace, and of a
//   real trace of stories260K (SHARED_DIR/models/real) with explain records and sampler
//   records in its steps.
// OUT_DIR/pickle/: pickles of torch_samples.h (a miniature nanoGPT checkpoint, numpy scalars,
//   a refused os.system call) and, from SHARED_DIR, nanoGPT's meta.pkl files and the data.pkl
//   records of its ckpt.pt files.
// OUT_DIR/torch_zip/: the miniature checkpoint in each zip layout torch_samples.h writes.
// OUT_DIR/gpt2_files/: GPT-2 tokenizer file pairs (gpt2_files_fuzz.h).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/npy.h"
#include "analysis/explain.h"
#include "analysis/explain_capture.h"
#include "loader/loader.h"
#include "sampling/record.h"
#include "sampling/sampler.h"
#include "trace/manifest.h"
#include "trace/trace_run.h"
#include "io/mapped_file.h"
#include "io/zip_reader.h"
#include "torch_samples.h"
#include "gpt2_files_fuzz.h"
#include "trace_fuzz.h"

namespace fs = std::filesystem;
using namespace tp;
namespace gv = tp::gguf_value;

namespace {

void save(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream os(p, std::ios::binary);
  os.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void synthetic_gguf(const fs::path& dir) {
  GgufWriter all;
  all.add_string("general.architecture", "llama");
  all.add_u8("a.u8", 1); all.add_i8("a.i8", -1); all.add_u16("a.u16", 2); all.add_i16("a.i16", -2);
  all.add_u32("a.u32", 3); all.add_i32("a.i32", -3); all.add_u64("a.u64", 4); all.add_i64("a.i64", -4);
  all.add_f32("a.f32", 0.5f); all.add_f64("a.f64", 0.25); all.add_bool("a.bool", true);
  all.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xe2\x96\x81the"});
  all.add_array("tokenizer.ggml.scores", GgufType::F32, {gv::f32(0), gv::f32(-1), gv::f32(-2), gv::f32(-3)});
  all.add("a.nested", gv::array(GgufType::ARRAY, {gv::array(GgufType::I16, {gv::i16(5)}), gv::array(GgufType::STRING, {})}));
  all.add_tensor("token_embd.weight", DType::F16, {4, 4}, std::vector<uint8_t>(32, 0x3c));
  all.add_tensor("blk.0.attn_q.weight", DType::Q8_0, {32, 1}, std::vector<uint8_t>(34, 1));
  all.add_tensor("blk.0.ffn_up.weight", DType::Q4_K, {256}, std::vector<uint8_t>(144, 2));
  all.add_tensor("output_norm.weight", DType::F32, {4}, std::vector<uint8_t>(16, 0));
  save(dir / "all_types.gguf", all.to_bytes());

  GgufWriter aligned;
  aligned.set_alignment(64);
  aligned.add_tensor("a", DType::F32, {3}, std::vector<uint8_t>(12, 7));
  aligned.add_tensor("b", DType::BF16, {2, 2}, std::vector<uint8_t>(8, 9));
  save(dir / "aligned64.gguf", aligned.to_bytes());

  save(dir / "empty.gguf", GgufWriter().to_bytes());
}

// The value with arrays cut to at most 8 items (recursively).
GgufValue shrink(const GgufValue& v) {
  const auto* a = std::get_if<std::shared_ptr<const GgufArray>>(&v.v);
  if (!a) return v;
  std::vector<GgufValue> items;
  for (size_t i = 0; i < (*a)->items.size() && i < 8; ++i) items.push_back(shrink((*a)->items[i]));
  return gv::array((*a)->elem_type, std::move(items));
}

void miniature(const fs::path& src, const fs::path& dst) {
  const GgufFile f = GgufFile::open(src.string());
  GgufWriter w;
  for (const auto& [k, v] : f.metadata()) w.add(k, k == "general.alignment" ? v : shrink(v));
  for (size_t i = 0; i < f.tensors().size() && i < 16; ++i) {
    const auto& t = f.tensors()[i];
    const int64_t block = dtype_info(t.type).block_elems;
    w.add_tensor(t.name, t.type, {block}, t.data, static_cast<size_t>(row_bytes(t.type, block)));
  }
  save(dst, w.to_bytes());
}

void npy_with_header(const fs::path& p, int major, const std::string& dict, const void* data, size_t n) {
  std::string header = dict;
  const size_t pre = major == 1 ? 10 : 12;
  header.append((64 - (pre + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  const uint32_t hl = static_cast<uint32_t>(header.size());
  b.push_back(static_cast<uint8_t>(hl));
  b.push_back(static_cast<uint8_t>(hl >> 8));
  if (major != 1) {
    b.push_back(static_cast<uint8_t>(hl >> 16));
    b.push_back(static_cast<uint8_t>(hl >> 24));
  }
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + n);
  save(p, b);
}

void npy_seeds(const fs::path& dir) {
  const float f[6] = {1, 2, 3, 4, 5, 6};
  write_npy((dir / "f4_2x3.npy").string(), f, {2, 3});
  write_npy((dir / "f4_6.npy").string(), f, {6});
  write_npy((dir / "f4_scalar.npy").string(), f, {});
  const double d[2] = {1.5, -2};
  npy_with_header(dir / "f8_v2.npy", 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", d, sizeof d);
  const int32_t i4[3] = {1, -2, 3};
  npy_with_header(dir / "i4.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 1), }", i4, sizeof i4);
  const int64_t i8[2] = {7, -7};
  npy_with_header(dir / "i8_v3.npy", 3, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }", i8, sizeof i8);
}

// Two sampled steps with explanations and sampler records, default capture.
void real_trace(const fs::path& model_path, const fs::path& dir) {
  const auto m = load_model(model_path.string());
  sampling::SamplerSettings settings;
  settings.temperature = 0.8f;
  settings.seed = 7;
  sampling::Sampler sampler(settings);
  ThreadPool pool(1);
  analysis::ExplainCapture cap(*m, pool);
  const std::vector<int32_t> prompt = m->tokenizer->encode("Once upon a time");
  auto choose = [&](const std::vector<float>& logits, const std::vector<int32_t>& history) {
    const auto rec = sampler.sample(logits.data(), int64_t(logits.size()), history);
    nlohmann::json step = {{"id", rec.chosen_id},
                           {"text", sampling::utf8_for_json(m->tokenizer->token_bytes(rec.chosen_id))},
                           {"logprobs", {{"x_tokenprobe", rec.to_json()}}}};
    analysis::add_explanation(step, cap, history, int(history.size() - prompt.size()));
    return step;
  };
  TraceRunOptions o;
  o.out_dir = dir.string();
  o.n_generate = 2;
  o.observer = &cap;
  run_traced(*m, pool, prompt, choose, o, trace_manifest(*m, prompt, {}, "Once upon a time", settings));
}

// Seeds above libFuzzer's -max_len (run_fuzzers.sh) would only be cut: left out.
void copy_seed(const fs::path& from, const fs::path& to) {
  if (fs::file_size(from) <= 65536) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

int trace_seeds(const fs::path& out, const char* shared) {
  for (const char* d : {"trace_manifest", "trace_steps", "trace_shard"}) fs::create_directories(out / d);
  fuzz::write_file(out / "trace_manifest" / "small.json", fuzz::valid_manifest());
  fuzz::write_file(out / "trace_steps" / "small.jsonl", fuzz::valid_steps());
  fuzz::write_valid_shard(out / "trace_shard" / "small.safetensors");
  const fs::path model = shared ? fs::path(shared) / "models/real/stories260K.gguf" : fs::path();
  if (!shared || !fs::exists(model)) return 0;
  const fs::path dir = out / "real.tptrace";
  real_trace(model, dir);
  copy_seed(dir / "manifest.json", out / "trace_manifest" / "real.json");
  copy_seed(dir / "steps.jsonl", out / "trace_steps" / "real.jsonl");
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") copy_seed(e.path(), out / "trace_shard" / ("real-" + std::to_string(n++) + ".safetensors"));
  fs::remove_all(dir);
  return 1;
}

void save_text(const fs::path& p, const std::string& s) { save(p, std::vector<uint8_t>(s.begin(), s.end())); }

int torch_seeds(const fs::path& out, const char* shared) {
  namespace ts = samples;
  fs::create_directories(out / "pickle");
  fs::create_directories(out / "torch_zip");
  save_text(out / "pickle" / "mini_checkpoint.pkl", ts::mini_checkpoint_pickle());
  const std::string dtype = ts::global("numpy", "dtype") + ts::tuple({ts::str("f8"), "\x89", "\x88"}) + "R" +
                            ts::tuple({ts::integer(3), ts::str("<")}) + "b";
  const std::string raw = ts::global("_codecs", "encode") +
                          ts::tuple({ts::str(std::string(6, '\0') + "\xc3\xb8?"), ts::str("latin1")}) + "R";
  save_text(out / "pickle" / "numpy_scalar.pkl",
            ts::proto(2) + ts::global("numpy.core.multiarray", "scalar") + ts::tuple({dtype, raw}) + "R.");
  save_text(out / "pickle" / "os_system.pkl", ts::proto(2) + ts::global("os", "system") + ts::str("true") + "\x85R.");
  ts::ZipOptions o;
  save(out / "torch_zip" / "torch_layout.pt", ts::mini_checkpoint(o));
  o.zip64_extra = true;
  o.align64 = false;
  save(out / "torch_zip" / "zip64_fields.pt", ts::mini_checkpoint(o));
  o.zip64_extra = o.zip64_end = false;
  save(out / "torch_zip" / "plain_zip.pt", ts::mini_checkpoint(o));
  if (!shared) return 0;
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(shared) / "models")) {
    if (e.path().filename() == "meta.pkl") {
      copy_seed(e.path(), out / "pickle" / ("meta-" + std::to_string(n++) + ".pkl"));
    } else if (e.path().extension() == ".pt") {
      const MappedFile f(e.path().string());
      const ZipReader zip(f.data(), f.size(), e.path().string());
      for (const auto& entry : zip.entries())
        if (entry.name.ends_with("/data.pkl") && entry.size <= 65536) {
          const auto bytes = zip.data(entry);
          save(out / "pickle" / ("data-" + std::to_string(n++) + ".pkl"), {bytes.begin(), bytes.end()});
        }
    }
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR [SHARED_DIR]\n");
    return 2;
  }
  const fs::path out = argv[1];
  try {
    fs::create_directories(out / "gguf");
    fs::create_directories(out / "npy");
    synthetic_gguf(out / "gguf");
    npy_seeds(out / "npy");
    int n = 0;
    if (argc > 2 && fs::is_directory(argv[2])) {
      for (const auto& e : fs::recursive_directory_iterator(argv[2])) {
        if (e.path().extension() != ".gguf") continue;
        miniature(e.path(), out / "gguf" / ("mini-" + e.path().filename().string()));
        ++n;
      }
    }
    tp::fuzz::write_gpt2_files_seeds(out / "gpt2_files", argc > 2 ? argv[2] : "");
    const int real = trace_seeds(out, argc > 2 ? argv[2] : nullptr);
    const int pickles = torch_seeds(out, argc > 2 ? argv[2] : nullptr);
    std::printf("make_seeds: wrote synthetic seeds, %d miniatures of shared GGUF files, %d real trace(s) and %d "
                "pickles from shared torch files\n", n, real, pickles);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}

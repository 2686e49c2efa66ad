// The torch.save reader (io/torch_file.h, io/zip_reader.h) on nanoGPT's fixtures and on
// miniature archives built in fuzz/torch_samples.h: names, shapes, values, tied storage
// identity, zero-copy views, and refusals of broken or unsupported archives.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fuzz/torch_samples.h"
#include "io/npy.h"
#include "io/torch_file.h"
#include "test_support.h"

namespace tp {
namespace {

namespace s = samples;
using pickle::Kind;

const char* kGpt2 = "models/nanogpt/nanogpt-gpt2-tiny";
const char* kChar = "models/nanogpt/nanogpt-shakespeare-char-tiny";

std::vector<uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream is(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(is), {}};
}

const TorchTensor& by_name(const std::vector<TorchTensor>& ts, const std::string& name) {
  for (const auto& t : ts)
    if (t.name == name) return t;
  throw std::runtime_error("no tensor " + name);
}

float f32_at(const TorchTensor& t, int64_t element) {  // element index relative to `data`
  float v;
  std::memcpy(&v, t.data + 4 * element, 4);
  return v;
}

// Runs f and returns the Error it throws (failing the test when it throws nothing).
template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no Error thrown";
  return Error(ErrorKind::Usage, "", "");
}

std::string text(const Error& e) { return e.where() + " | " + e.problem() + " | " + e.hint(); }

TEST(TorchFile, NanoGptGpt2ModelArgsAndScalars) {
  TP_REQUIRE_SHARED(std::string(kGpt2) + "/ckpt.pt");
  const TorchFile f = TorchFile::open((test::shared_dir() / kGpt2 / "ckpt.pt").string());
  const auto& t = f.tree();
  const auto args = f.find({"model_args"});
  ASSERT_TRUE(args);
  EXPECT_EQ(t.as_int(*t.get(*args, "n_layer"), "n_layer"), 2);
  EXPECT_EQ(t.as_int(*t.get(*args, "n_head"), "n_head"), 4);
  EXPECT_EQ(t.as_int(*t.get(*args, "n_embd"), "n_embd"), 32);
  EXPECT_EQ(t.as_int(*t.get(*args, "block_size"), "block_size"), 64);
  EXPECT_EQ(t.as_int(*t.get(*args, "vocab_size"), "vocab_size"), 50304);
  EXPECT_TRUE(t.as_bool(*t.get(*args, "bias"), "bias"));
  EXPECT_EQ(t.as_float(*t.get(*args, "dropout"), "dropout"), 0.0);
  EXPECT_EQ(f.number(*f.find({"iter_num"}), "iter_num"), 5000);
  const double loss = f.number(*f.find({"best_val_loss"}), "best_val_loss");  // a 0-d tensor
  EXPECT_TRUE(loss > 0 && loss < 20) << loss;
  EXPECT_EQ(t.as_str(*f.find({"config", "dataset"}), "dataset"), "openwebtext");
  EXPECT_NE(t.to_display(*args).find("'n_layer': 2"), std::string::npos) << t.to_display(*args);
}

TEST(TorchFile, NanoGptGpt2TensorsAndTiedStorage) {
  TP_REQUIRE_SHARED(std::string(kGpt2) + "/ckpt.pt");
  const TorchFile f = TorchFile::open((test::shared_dir() / kGpt2 / "ckpt.pt").string());
  const auto ts = f.tensors({"model"});
  ASSERT_EQ(ts.size(), 29u);  // wte, wpe, 2 x 12 block tensors, ln_f x 2, lm_head
  for (const auto& t : ts) {
    EXPECT_EQ(t.name.rfind("_orig_mod.", 0), 0u) << t.name;  // trained with torch.compile
    EXPECT_TRUE(t.contiguous()) << t.name;
    EXPECT_EQ(t.type, pickle::StorageType::Float);
  }
  const auto& wte = by_name(ts, "_orig_mod.transformer.wte.weight");
  const auto& lm = by_name(ts, "_orig_mod.lm_head.weight");
  EXPECT_EQ(wte.sizes, (std::vector<int64_t>{50304, 32}));
  EXPECT_EQ(lm.storage, wte.storage);  // tied: one storage, one set of bytes
  EXPECT_EQ(lm.data, wte.data);
  EXPECT_EQ(by_name(ts, "_orig_mod.transformer.h.1.attn.c_attn.weight").sizes, (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(by_name(ts, "_orig_mod.transformer.h.0.mlp.c_fc.bias").sizes, (std::vector<int64_t>{128}));
  EXPECT_NE(by_name(ts, "_orig_mod.transformer.wpe.weight").storage, wte.storage);
  const TensorView v = by_name(ts, "_orig_mod.transformer.h.1.attn.c_attn.weight").as_view();
  EXPECT_EQ(v.ne, (std::vector<int64_t>{32, 96}));  // ggml order: 96 rows of 32
  EXPECT_EQ(v.type, DType::F32);
  EXPECT_EQ(v.n_rows(), 96);
  EXPECT_EQ(v.nbytes, 96u * 32 * 4);
}

// The reference's embed is wte's rows of the prompt's ids; pos_embed is wpe's first rows.
TEST(TorchFile, NanoGptGpt2ValuesMatchReferenceEmbeddings) {
  const std::string ref = std::string(kGpt2) + "/ref/picked";
  TP_REQUIRE_SHARED(ref + "/embed.npy");
  const TorchFile f = TorchFile::open((test::shared_dir() / kGpt2 / "ckpt.pt").string());
  const auto ts = f.tensors({"model"});
  const auto& wte = by_name(ts, "_orig_mod.transformer.wte.weight");
  const auto& wpe = by_name(ts, "_orig_mod.transformer.wpe.weight");
  std::ifstream js(test::shared_dir() / ref / "tokens.json");
  const auto ids = nlohmann::json::parse(js)["tokens"].get<std::vector<int64_t>>();
  const NpyArray embed = read_npy((test::shared_dir() / ref / "embed.npy").string());
  const NpyArray pos = read_npy((test::shared_dir() / ref / "pos_embed.npy").string());
  ASSERT_EQ(embed.shape, (std::vector<int64_t>{int64_t(ids.size()), 32}));
  for (size_t p = 0; p < ids.size(); ++p)
    for (int64_t c = 0; c < 32; ++c) {
      EXPECT_EQ(f32_at(wte, ids[p] * 32 + c), embed.data[p * 32 + size_t(c)]) << p << "," << c;
      EXPECT_EQ(f32_at(wpe, int64_t(p) * 32 + c), pos.data[p * 32 + size_t(c)]) << p << "," << c;
    }
}

// Zero-copy: every tensor, the optimizer's included, is a view into the file's own bytes.
TEST(TorchFile, ViewsPointIntoTheFileIncludingTheSkippedOptimizer) {
  TP_REQUIRE_SHARED(std::string(kGpt2) + "/ckpt.pt");
  const std::vector<uint8_t> bytes = read_all(test::shared_dir() / kGpt2 / "ckpt.pt");
  const TorchFile f = TorchFile::parse(bytes.data(), bytes.size(), "ckpt.pt");
  const auto inside = [&](const TorchTensor& t) {
    return t.data >= bytes.data() && t.data + t.nbytes <= bytes.data() + bytes.size();
  };
  for (const auto& t : f.tensors({"model"})) EXPECT_TRUE(inside(t)) << t.name;
  const auto& tree = f.tree();
  size_t n_opt = 0;
  for (const auto& [k, per_param] : tree.entries(*f.find({"optimizer", "state"}), "state"))
    for (const auto& [name, v] : tree.entries(per_param, "param state"))
      if (tree.is(v, Kind::Tensor)) {
        EXPECT_TRUE(inside(f.tensor(v, tree.as_str(name, "name"))));
        ++n_opt;
      }
  EXPECT_EQ(n_opt, 3u * 26);  // step, exp_avg, exp_avg_sq for each of 26 parameters (lm_head is tied)
}

TEST(TorchFile, NanoGptCharModelWithoutBias) {
  TP_REQUIRE_SHARED(std::string(kChar) + "/ckpt.pt");
  const TorchFile f = TorchFile::open((test::shared_dir() / kChar / "ckpt.pt").string());
  EXPECT_FALSE(f.tree().as_bool(*f.find({"model_args", "bias"}), "bias"));
  EXPECT_EQ(f.tree().as_int(*f.find({"model_args", "vocab_size"}), "vocab_size"), 65);
  const auto ts = f.tensors({"model"});
  EXPECT_EQ(ts.size(), 22u);
  for (const auto& t : ts) EXPECT_EQ(t.name.find(".bias"), std::string::npos) << t.name;
  EXPECT_EQ(by_name(ts, "lm_head.weight").storage, by_name(ts, "transformer.wte.weight").storage);
}

TEST(TorchFile, CharMetaPklIsReadByTheSameUnpickler) {
  TP_REQUIRE_SHARED(std::string(kChar) + "/meta.pkl");
  const auto meta = pickle::load_pickle_file((test::shared_dir() / kChar / "meta.pkl").string());
  const auto root = meta.root();
  EXPECT_EQ(meta.as_int(*meta.get(root, "vocab_size"), "vocab_size"), 65);
  const auto stoi = *meta.get(root, "stoi");
  const auto itos = meta.entries(*meta.get(root, "itos"), "itos");
  ASSERT_EQ(itos.size(), 65u);
  ASSERT_EQ(meta.dict_size(stoi), 65u);
  EXPECT_EQ(meta.as_str(itos[0].second, "itos[0]"), "\n");
  for (const auto& [i, ch] : itos) EXPECT_EQ(meta.as_int(*meta.get(stoi, meta.as_str(ch, "ch")), "stoi"), meta.as_int(i, "i"));
}

// ---- miniature archives ---------------------------------------------------------------------

void expect_mini(const std::vector<uint8_t>& bytes) {
  const TorchFile f = TorchFile::parse(bytes.data(), bytes.size(), "mini.pt");
  const auto ts = f.tensors({"model"});
  ASSERT_EQ(ts.size(), 4u);
  const auto& wte = by_name(ts, "_orig_mod.wte.weight");
  const auto& lm = by_name(ts, "_orig_mod.lm_head.weight");
  const auto& wt = by_name(ts, "wT");
  EXPECT_EQ(lm.storage, wte.storage);
  EXPECT_EQ(lm.data, wte.data);
  EXPECT_EQ(f32_at(wte, 7), 7.0f);
  EXPECT_EQ(wte.nbytes, 48u);
  EXPECT_FALSE(wt.contiguous());  // reported; the loader decides what to do with it
  const Error e = error_of([&] { wt.as_view(); });
  EXPECT_NE(text(e).find("tensor wT | the view is not contiguous"), std::string::npos) << text(e);
  EXPECT_EQ(wte.as_view().row(2), wte.data + 2 * 3 * 4);
  EXPECT_EQ(wt.storage_offset, 1);
  EXPECT_EQ(wt.strides, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(f32_at(wt, 1 * 1 + 1 * 3), 5.0f);  // wT[1][1] = storage[1 + 1 + 3]
  EXPECT_EQ(by_name(ts, "ln.bias").nbytes, 12u);
  EXPECT_EQ(f.number(*f.find({"best_val_loss"}), "best_val_loss"), 1.5);
  EXPECT_EQ(f.number(*f.find({"iter_num"}), "iter_num"), 5);
  EXPECT_TRUE(f.tree().as_bool(*f.find({"model_args", "bias"}), "bias"));
}

TEST(TorchFile, MiniCheckpointAsTorchWritesIt) { expect_mini(s::mini_checkpoint()); }

TEST(TorchFile, MiniCheckpointWithZip64FieldsAndNoPadding) {
  s::ZipOptions o;
  o.zip64_extra = true;
  o.align64 = false;  // data at odd offsets: views stay usable, nothing is copied
  expect_mini(s::mini_checkpoint(o));
  o.zip64_end = false;
  o.zip64_extra = false;
  expect_mini(s::mini_checkpoint(o));
}

TEST(TorchFile, RefusesCompressedEntriesNamingEntryAndMethod) {
  auto entries = s::mini_checkpoint_entries();
  entries[3].method = 8;  // data/1: ln.bias
  const auto bytes = s::make_zip(entries);
  const TorchFile f = TorchFile::parse(bytes.data(), bytes.size(), "z.pt");
  const Error e = error_of([&] { f.tensors({"model"}); });
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_NE(text(e).find("entry ckpt/data/1"), std::string::npos) << text(e);
  EXPECT_NE(text(e).find("method 8 (deflate)"), std::string::npos) << text(e);
}

TEST(TorchFile, RefusesBigEndianByteOrder) {
  auto entries = s::mini_checkpoint_entries();
  entries[1].data = "big";
  const auto bytes = s::make_zip(entries);
  const Error e = error_of([&] { TorchFile::parse(bytes.data(), bytes.size(), "be.pt"); });
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_NE(text(e).find("byte order 'big'"), std::string::npos) << text(e);
}

// Storages are checked when a tensor over them is asked for: the optimizer's are never touched.
TEST(TorchFile, MissingOrShortStorageRecordIsAFormatErrorWhenUsed) {
  auto entries = s::mini_checkpoint_entries();
  entries[5].data.resize(8);  // data/3: the optimizer's exp_avg, 12 floats promised
  auto bytes = s::make_zip(entries);
  const TorchFile f = TorchFile::parse(bytes.data(), bytes.size(), "short.pt");
  EXPECT_EQ(f.tensors({"model"}).size(), 4u);
  const auto exp_avg = *f.find({"optimizer", "state"});
  const auto per_param = f.tree().entries(exp_avg, "state")[0].second;
  Error e = error_of([&] { f.tensor(*f.tree().get(per_param, "exp_avg"), "exp_avg"); });
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_NE(text(e).find("needs 48 bytes; the record has 8"), std::string::npos) << text(e);

  entries.erase(entries.begin() + 2);  // data/0
  bytes = s::make_zip(entries);
  const TorchFile g = TorchFile::parse(bytes.data(), bytes.size(), "missing.pt");
  e = error_of([&] { g.tensors({"model"}); });
  EXPECT_NE(text(e).find("has no ckpt/data/0 record"), std::string::npos) << text(e);
}

TEST(TorchFile, EveryTruncationIsAnError) {
  const auto full = s::mini_checkpoint();
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(TorchFile::parse(cut.data(), cut.size(), "cut.pt"), Error) << n;
  }
}

TEST(TorchFile, CorruptedPickleFailsItsCrc) {
  auto bytes = s::mini_checkpoint();
  const ZipReader z(bytes.data(), bytes.size(), "mini.pt");
  bytes[z.find("ckpt/data.pkl")->data_offset + 20] ^= 1;
  const Error e = error_of([&] { TorchFile::parse(bytes.data(), bytes.size(), "crc.pt"); });
  EXPECT_NE(text(e).find("CRC-32 mismatch"), std::string::npos) << text(e);
}

TEST(TorchFile, RefusesLegacyAndForeignArchives) {
  const std::string legacy = s::proto(2) + s::integer(1) + ".";
  Error e = error_of([&] { TorchFile::parse(reinterpret_cast<const uint8_t*>(legacy.data()), legacy.size(), "old.pt"); });
  EXPECT_NE(text(e).find("legacy torch.save"), std::string::npos) << text(e);
  const auto other = s::make_zip({{"readme.txt", "hi"}});
  e = error_of([&] { TorchFile::parse(other.data(), other.size(), "other.zip"); });
  EXPECT_NE(text(e).find("no <archive>/data.pkl"), std::string::npos) << text(e);
  const auto text_file = std::string("hello, not a zip file at all...");
  EXPECT_THROW(TorchFile::parse(reinterpret_cast<const uint8_t*>(text_file.data()), text_file.size(), "t"), Error);
}

TEST(ZipReader, RefusesDuplicateNamesAndImpossibleCounts) {
  auto dup = s::make_zip({{"a/x", "1"}, {"a/x", "2"}});
  Error e = error_of([&] { ZipReader(dup.data(), dup.size(), "dup.zip"); });
  EXPECT_NE(text(e).find("two entries are named a/x"), std::string::npos) << text(e);

  s::ZipOptions o;
  o.zip64_end = false;
  auto many = s::make_zip({{"a/x", "1"}}, o);
  many[many.size() - 12] = 0xFF;  // EOCD entry count 0x00FF with a 1-entry directory
  e = error_of([&] { ZipReader(many.data(), many.size(), "many.zip"); });
  EXPECT_NE(text(e).find("claims 255 entries"), std::string::npos) << text(e);
}

TEST(ZipReader, LocalHeaderMustMatchTheDirectory) {
  auto bytes = s::make_zip({{"a/x", "payload"}});
  bytes[30] = 'b';  // the local header's name: "b/x"
  const Error e = error_of([&] { ZipReader(bytes.data(), bytes.size(), "l.zip"); });
  EXPECT_NE(text(e).find("the local header names another entry"), std::string::npos) << text(e);
}

}  // namespace
}  // namespace tp

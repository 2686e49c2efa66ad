// Weights declared once (model/weight_decl.h): one declaration both lists a tensor in the
// architecture's table and binds it; the table the loader validates is the one the
// declarations make; mistakes in the declarations themselves are refused.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "arch/architecture.h"
#include "core/error.h"
#include "loader/loader.h"
#include "model/weight_decl.h"
#include "test_support.h"

namespace tp {
namespace {

// A store holding an F32 tensor of zeros for each entry given.
WeightStore store_of(const std::vector<WeightEntry>& entries, const std::string& source = "test.gguf") {
  auto buffers = std::make_shared<std::vector<std::vector<float>>>();
  std::map<std::string, TensorView> views;
  for (const auto& e : entries) {
    int64_t n = 1;
    for (int64_t d : e.ne) n *= d;
    auto& buf = buffers->emplace_back(static_cast<size_t>(n), 0.0f);
    views[e.name] = TensorView{e.name, DType::F32, e.ne, reinterpret_cast<const uint8_t*>(buf.data()),
                               static_cast<uint64_t>(n) * 4};
  }
  return WeightStore(std::move(views), buffers, source);
}

// The declarations of a two-layer toy model, run against `d`.
std::vector<TensorView> declare_toy(WeightDecl& d) {
  std::vector<TensorView> views = {d.tensor("token_embd.weight", {4, 10}), d.optional("output.weight", {4, 10})};
  for (int l = 0; l < 2; ++l) {
    WeightDecl::Block b = d.block(l);
    views.push_back(b.tensor("attn_q.weight", {4, 4}));
    views.push_back(b.optional("attn_q.bias", {4}));
  }
  return views;
}

ModelConfig small_config(const std::string& arch) {
  ModelConfig c;
  c.architecture = arch;
  c.d_model = 8;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.d_head = 4;
  c.d_mlp = 12;
  c.d_vocab = 16;
  c.n_ctx = 32;
  c.n_layers = 3;
  c.rope_dims = 4;
  return c;
}

TEST(WeightDecl, ListingYieldsTheTableAndEmptyViews) {
  WeightDecl listing;
  for (const TensorView& v : declare_toy(listing)) EXPECT_FALSE(v.present());
  const auto& specs = listing.specs();
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].pattern, "token_embd.weight");
  EXPECT_TRUE(specs[0].required);
  EXPECT_EQ(specs[1].pattern, "output.weight");
  EXPECT_FALSE(specs[1].required);
  EXPECT_EQ(specs[2].pattern, "blk.{L}.attn_q.weight");
  EXPECT_EQ(specs[2].ne, (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(specs[3].pattern, "blk.{L}.attn_q.bias");
  std::vector<std::string> names;
  for (const auto& e : listing.entries()) names.push_back(e.name);
  // Each pattern's names layer by layer, in declaration order: the order `info` prints.
  EXPECT_EQ(names, (std::vector<std::string>{"token_embd.weight", "output.weight", "blk.0.attn_q.weight",
                                             "blk.1.attn_q.weight", "blk.0.attn_q.bias", "blk.1.attn_q.bias"}));
}

TEST(WeightDecl, BindingReturnsTheStoresViews) {
  WeightDecl listing;
  declare_toy(listing);
  const WeightStore store = store_of(listing.entries());
  WeightDecl binding(store);
  for (const TensorView& v : declare_toy(binding)) {
    ASSERT_TRUE(v.present()) << v.name;
    EXPECT_EQ(v.data, store.find(v.name)->data);
  }
  EXPECT_EQ(binding.entries().size(), listing.entries().size());
}

TEST(WeightDecl, MissingRequiredTensorThrowsNamingItAndTheFile) {
  WeightDecl listing;
  declare_toy(listing);
  std::vector<WeightEntry> entries = listing.entries();
  std::erase_if(entries, [](const WeightEntry& e) { return e.name == "blk.1.attn_q.weight"; });
  const WeightStore store = store_of(entries, "broken.gguf");
  WeightDecl binding(store);
  try {
    declare_toy(binding);
    FAIL() << "expected Error(NotFound)";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    EXPECT_EQ(e.where(), "broken.gguf: tensor blk.1.attn_q.weight");
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST(WeightDecl, WrongShapeThrowsNamingTensorAndShapes) {
  const WeightStore store = store_of({{"token_embd.weight", {4, 11}}}, "shape.gguf");
  WeightDecl binding(store);
  try {
    binding.tensor("token_embd.weight", {4, 10});
    FAIL() << "expected Error(Shape)";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Shape);
    EXPECT_EQ(e.where(), "shape.gguf: tensor token_embd.weight");
    EXPECT_NE(e.problem().find("[4, 11]"), std::string::npos) << e.problem();
    EXPECT_NE(e.problem().find("[4, 10]"), std::string::npos) << e.problem();
  }
}

TEST(WeightDecl, AbsentOptionalTensorIsAnEmptyView) {
  WeightDecl listing;
  declare_toy(listing);
  std::vector<WeightEntry> entries = listing.entries();
  std::erase_if(entries, [](const WeightEntry& e) { return !e.required; });
  const WeightStore store = store_of(entries);
  WeightDecl binding(store);
  const auto views = declare_toy(binding);
  EXPECT_TRUE(views[0].present());
  EXPECT_FALSE(views[1].present());  // output.weight
  EXPECT_TRUE(views[2].present());
  EXPECT_FALSE(views[3].present());  // blk.0.attn_q.bias
  // Absent or not, an optional tensor stays in the table.
  EXPECT_EQ(binding.entries().size(), listing.entries().size());
}

TEST(WeightDecl, DeclaringANameTwiceIsRefused) {
  WeightDecl d;
  d.tensor("token_embd.weight", {4, 10});
  EXPECT_THROW(d.optional("token_embd.weight", {4, 10}), Error);
  WeightDecl::Block b = d.block(0);
  b.tensor("attn_q.weight", {4, 4});
  try {
    b.tensor("attn_q.weight", {4, 4});
    FAIL() << "expected Error(Usage)";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(e.where().find("blk.0.attn_q.weight"), std::string::npos) << e.where();
    EXPECT_NE(e.problem().find("twice"), std::string::npos) << e.problem();
  }
}

TEST(WeightDecl, BlocksMustDeclareAlike) {
  WeightDecl shapes;
  shapes.block(0).tensor("attn_q.weight", {4, 4});
  EXPECT_THROW(shapes.block(1).tensor("attn_q.weight", {4, 8}), Error);
  WeightDecl gaps;
  gaps.block(0).tensor("attn_q.weight", {4, 4});
  gaps.block(1).tensor("attn_k.weight", {4, 4});
  EXPECT_THROW(gaps.entries(), Error);  // each is in one of the two layers
}

// For every architecture: the table binding records equals the listed one, every tensor the
// table lists is used, and the MLP's gating comes from what is declared.
TEST(WeightDecl, EveryArchitectureBindsItsOwnTable) {
  for (const Architecture* arch : architectures()) {
    SCOPED_TRACE(arch->name);
    const ModelConfig c = small_config(arch->name);
    const std::vector<WeightSpec> specs = weight_table(*arch, c);
    ASSERT_FALSE(specs.empty());
    const std::vector<WeightEntry> entries = expand_table(specs, c.n_layers);
    const WeightStore store = store_of(entries);
    WeightDecl binding(store);
    auto impl = arch->declare(c, binding);
    const std::vector<WeightEntry> bound = binding.entries();
    ASSERT_EQ(bound.size(), entries.size());
    for (size_t i = 0; i < bound.size(); ++i) {
      EXPECT_EQ(bound[i].name, entries[i].name);
      EXPECT_EQ(bound[i].ne, entries[i].ne);
      EXPECT_EQ(bound[i].required, entries[i].required);
    }
    const bool has_gate = store.find("blk.0.ffn_gate.weight") != nullptr;
    const bool fused = std::string(arch->name) == "phi3";
    EXPECT_EQ(impl->gated_mlp(), has_gate || fused);
  }
}

TEST(WeightDecl, LoadedTableIsTheDeclaredTable) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  TP_REQUIRE_SHARED("models/real/stories260K.bin");
  for (const char* rel : {"models/real/stories260K.gguf", "models/real/stories260K.bin"}) {
    SCOPED_TRACE(rel);
    auto m = load_model((test::shared_dir() / rel).string());
    const auto expected = expand_table(weight_table(find_architecture("llama", rel), m->config), m->config.n_layers);
    ASSERT_EQ(m->table.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(m->table[i].name, expected[i].name);
    // The llama2.c reader maps onto the same table: every tensor it reads is in it.
    for (const auto& [name, view] : m->weights.all()) {
      bool listed = false;
      for (const auto& e : m->table) listed = listed || e.name == name;
      EXPECT_TRUE(listed) << name;
    }
    EXPECT_TRUE(m->config.gated_mlp);
  }
}

// With two tensors missing, the error names the first in table order (blk.3.attn_q before any
// ffn_up), as validation reported before declarations bound block by block.
TEST(WeightDecl, FirstProblemReportedInTableOrder) {
  TP_REQUIRE_SHARED("models/real/stories260K.gguf");
  std::ifstream is(test::shared_dir() / "models/real/stories260K.gguf", std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(is), {});
  for (const auto& [from, to] : {std::pair{"blk.0.ffn_up.weight", "blk.0.ffn_uX.weight"},
                                 std::pair{"blk.3.attn_q.weight", "blk.3.attn_X.weight"}}) {
    const size_t at = bytes.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    bytes.replace(at, std::string(to).size(), to);
  }
  const auto path = std::filesystem::temp_directory_path() / ("tokenprobe-test-" + std::to_string(::getpid()) + "-two-missing.gguf");
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::string where;
  try {
    load_model(path.string());
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotFound);
    where = e.where();
  }
  std::filesystem::remove(path);
  EXPECT_EQ(where, path.string() + ": tensor blk.3.attn_q.weight");
}

}  // namespace
}  // namespace tp

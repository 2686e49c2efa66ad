// `tokenprobe convert` (loader/hf_convert.h): HuggingFace folders written as GGUF files.
// - The six synthetic GGUF models go GGUF -> HF folder (tools/hf_folder) -> convert -> GGUF:
//   with --type f32 every tensor is the original's, byte for byte, and every metadata key
//   llama.cpp reads has the original's value; tokenprobe on the result matches ../shared/reference.
// - TinyStories-656K as published: the converted GGUF matches ../shared/reference-hf and its
//   vocabulary tokenizes the prompts into the ids llama.cpp's own conversion gave.
// - f16 / q8_0 outputs load and stay near the F32 reference; the errors name what and hint.
// llama.cpp itself is checked by scripts/check-convert-llamacpp (docs/huggingface.md).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hf_folder/hf_folder.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "loader/hf_convert.h"
#include "loader/loader.h"
#include "quant/quant.h"
#include "reference_check.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

constexpr test::Tolerance kF32{1e-4, 1e-4, 1.0};
const std::vector<std::string> kModels = {"llama-spm-tiny", "gpt2-tiny", "gptneox-tiny", "qwen2-tiny", "phi3-tiny", "gemma-tiny"};

// The synthetic model as an HF folder, converted with `type`: the GGUF's path.
fs::path convert_synthetic(const std::string& model, DType type, const std::string& tag) {
  const fs::path dir = test::scratch_path("convert", model + "-" + tag);
  hf_folder::write_hf_folder((test::shared_dir() / "models/synthetic" / (model + ".gguf")).string(), dir, {});
  const fs::path out = test::scratch_path("convert", model + "-" + tag + ".gguf");
  ConvertOptions o;
  o.type = type;
  convert_model(*load_model(dir.string()), out.string(), o);
  fs::remove_all(dir);
  return out;
}

bool same_value(const GgufFile& a, const GgufFile& b, const std::string& key) {
  const GgufValue* x = a.find(key);
  const GgufValue* y = b.find(key);
  if (!x || !y) return false;
  if (x->is_integer() && y->is_integer()) return a.get_i64(key) == b.get_i64(key);
  if (x->is_float() && y->is_float()) return a.get_f64(key) == b.get_f64(key);
  return x->type == y->type && x->to_display(1u << 20) == y->to_display(1u << 20);
}

class ConvertSynthetic : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvertSynthetic, RoundTripIsTheOriginalFile) {
  const std::string gguf = "models/synthetic/" + GetParam() + ".gguf";
  TP_REQUIRE_SHARED(gguf);
  const fs::path out = convert_synthetic(GetParam(), DType::F32, "f32");
  const GgufFile orig = GgufFile::open((test::shared_dir() / gguf).string());
  const GgufFile conv = GgufFile::open(out.string());
  ASSERT_EQ(conv.tensors().size(), orig.tensors().size());
  for (const GgufTensor& t : orig.tensors()) {
    const GgufTensor* c = conv.find_tensor(t.name);
    ASSERT_NE(c, nullptr) << t.name;
    EXPECT_EQ(c->ne, t.ne) << t.name;
    ASSERT_EQ(c->type, DType::F32) << t.name;
    if (t.type == DType::F32) {
      ASSERT_EQ(c->nbytes, t.nbytes) << t.name;
      EXPECT_EQ(std::memcmp(c->data, t.data, t.nbytes), 0) << t.name << ": bytes differ";
    } else {  // an F16 original (the embeddings of some): the same values, widened
      std::vector<float> want(static_cast<size_t>(t.n_elements()));
      quant::dequantize_row(t.type, t.data, want.data(), t.n_elements());
      EXPECT_EQ(std::memcmp(c->data, want.data(), c->nbytes), 0) << t.name << ": values differ";
    }
  }
  // The folder holds no tokenizer (tools/hf_folder writes config and weights): those keys
  // are "none" here (llama.cpp's vocabulary-less models), the rest must be the original's.
  EXPECT_EQ(conv.get_string("tokenizer.ggml.model"), "none");
  for (const auto& [key, value] : orig.metadata()) {
    if (key.starts_with("tokenizer.") || key == "general.name") continue;
    EXPECT_TRUE(same_value(orig, conv, key)) << key;
  }
  const auto model = load_model(out.string());
  EXPECT_EQ(model->format, "gguf");
  for (const char* prompt : {"picked", "lily"})
    test::check_against_reference(*model, test::shared_dir() / "reference" / GetParam() / prompt,
                                  GetParam() + "/" + prompt + " (converted)", kF32);
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, ConvertSynthetic, ::testing::ValuesIn(kModels),
                         [](const auto& info) { return test::model_label(info.param); });

// F16 weights round each element to 11 significant bits, Q8_0 to 8 bits of its 32-element
// block's largest: every product moves by about that fraction, and the errors add up over the
// layers of this untrained model (logits up to ~10). The bounds are ~3x the figures measured
// on 2026-12-04 (f16: 4.2e-3 activations, 1.5e-2 logits, NMSE 1e-6; q8_0: 0.19, 0.60, NMSE
// 1.4e-3); the greedy ids must stay llama.cpp's. The F16 file is loaded with float matmul
// inputs: the test measures what converting the weights loses against the F32 reference,
// not llama.cpp's rounding of the activations as well (docs/numerics.md).
struct Lossy {
  const char* type;
  DType dtype;
  test::Tolerance tol;
};
constexpr Lossy kLossy[] = {{"f16", DType::F16, {1.5e-2, 5e-2, 5e-6}}, {"q8_0", DType::Q8_0, {0.6, 2.0, 5e-3}}};

class ConvertLossy : public ::testing::TestWithParam<Lossy> {};

TEST_P(ConvertLossy, LoadsAndStaysNearTheReference) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-tiny.gguf");
  const Lossy& l = GetParam();
  const fs::path out = convert_synthetic("llama-spm-tiny", l.dtype, l.type);
  const GgufFile f = GgufFile::open(out.string());
  for (const GgufTensor& t : f.tensors())  // matrices as asked, vectors (the norms) F32
    EXPECT_EQ(t.type, t.ne.size() == 1 ? DType::F32 : l.dtype) << t.name;
  const auto model = load_model(out.string(), {.matmul_inputs = MatmulInputs::Float});
  test::check_against_reference(*model, test::shared_dir() / "reference/llama-spm-tiny/picked",
                                std::string("llama-spm-tiny/picked (") + l.type + ")", l.tol);
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Types, ConvertLossy, ::testing::ValuesIn(kLossy), [](const auto& info) { return std::string(info.param.type); });

// As hf_reference_test.cpp's bound for this trained model's large residual stream.
constexpr test::Tolerance kTrained{2e-4, 1e-4, 1.0};

TEST(ConvertTinyStories, MatchesTheReferenceAndTokenizesAsLlamaCppsConversion) {
  TP_REQUIRE_SHARED("models/real/TinyStories-656K/config.json");
  TP_REQUIRE_SHARED("reference-hf/TinyStories-656K/lily/tokens.json");
  const fs::path out = test::scratch_path("convert", "TinyStories-656K.gguf");
  convert_model(*load_model((test::shared_dir() / "models/real/TinyStories-656K").string()), out.string(), {});
  const auto model = load_model(out.string());
  EXPECT_EQ(model->config.rope_style, RopeStyle::Adjacent);  // Q/K rows in llama.cpp's order
  for (const char* prompt : {"picked", "lily"}) {
    const fs::path dir = test::shared_dir() / "reference-hf/TinyStories-656K" / prompt;
    test::check_against_reference(*model, dir, std::string("TinyStories-656K/") + prompt + " (converted)", kTrained);
    std::ifstream js(dir / "tokens.json");
    const auto meta = nlohmann::json::parse(js);
    // The ids llama.cpp's converted vocabulary gives (scores -1000, SentencePiece merges),
    // which differ from the folder's own BPE on "lily" (issue 19's fixture note).
    EXPECT_EQ(model->tok().encode(meta["text"].get<std::string>()), meta["tokens"].get<std::vector<int32_t>>()) << prompt;
  }
  const GgufFile f = GgufFile::open(out.string());
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f.get_u64("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token"));
  fs::remove(out);
}

TEST(ConvertTypes, PerTensorRule) {
  EXPECT_EQ(convert_tensor_type("blk.0.attn_q.weight", {64, 64}, DType::F32, DType::Q8_0), DType::Q8_0);
  EXPECT_EQ(convert_tensor_type("blk.0.attn_norm.weight", {64}, DType::F32, DType::Q8_0), DType::F32);
  EXPECT_EQ(convert_tensor_type("blk.0.attn_qkv.bias", {192}, DType::BF16, DType::F16), DType::F32);
  EXPECT_EQ(convert_tensor_type("blk.0.ffn_down.weight", {172, 64}, DType::F32, DType::Q4_0), DType::F16);  // 172 % 32
  EXPECT_EQ(convert_tensor_type("token_embd.weight", {64, 512}, DType::Q8_0, DType::Q8_0), DType::Q8_0);
  try {
    convert_tensor_type("blk.0.attn_q.weight", {64, 64}, DType::Q8_0, DType::Q4_0);
    FAIL() << "re-quantising was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--type q8_0"), std::string::npos) << e.what();
  }
}

// A folder's SentencePiece model becomes llama.cpp's "llama" vocabulary with its own scores
// (as _set_vocab_sentencepiece): the converted file tokenizes as llama2.c's export of it.
TEST(ConvertVocabulary, SentencePieceModelKeepsItsScores) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-tiny.gguf");
  TP_REQUIRE_SHARED("models/real/tok512.model");
  TP_REQUIRE_SHARED("models/real/tok512.bin");
  const fs::path dir = test::scratch_path("convert", "spm");
  hf_folder::write_hf_folder((test::shared_dir() / "models/synthetic/llama-spm-tiny.gguf").string(), dir, {});
  fs::copy_file(test::shared_dir() / "models/real/tok512.model", dir / "tokenizer.model");
  const fs::path out = dir / "out.gguf";
  convert_model(*load_model(dir.string()), out.string(), {});
  const GgufFile f = GgufFile::open(out.string());
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");
  const auto scores = f.get_f64_array("tokenizer.ggml.scores");
  ASSERT_GT(scores.size(), 300u);
  EXPECT_NE(scores[300], scores[299]);  // the model's scores, not LlamaHfVocab's -1000s
  const auto model = load_model(out.string());
  const auto ref = Tokenizer::from_llama2c((test::shared_dir() / "models/real/tok512.bin").string());
  for (const char* text : {"Once upon a time, there was a little girl named Lily.", "ünïcødé 🦙"})
    EXPECT_EQ(model->tok().encode(text), ref->encode(text)) << text;
  fs::remove_all(dir);
}

// GPT-2's own files (vocab.json + merges.txt) become llama.cpp's "gpt2" vocabulary: the
// tokens and merges of llama.cpp's GPT-2 GGUF, tokenizing alike.
TEST(ConvertVocabulary, Gpt2FilesGiveTheGgufVocabulary) {
  TP_REQUIRE_SHARED("models/synthetic/gpt2-tiny.gguf");
  TP_REQUIRE_SHARED("tokenizers/gpt2/encoder.json");
  const fs::path gguf = test::shared_dir() / "models/synthetic/gpt2-tiny.gguf";
  const fs::path dir = test::scratch_path("convert", "gpt2-files");
  hf_folder::write_hf_folder(gguf.string(), dir, {});
  fs::copy_file(test::shared_dir() / "tokenizers/gpt2/encoder.json", dir / "vocab.json");
  fs::copy_file(test::shared_dir() / "tokenizers/gpt2/vocab.bpe", dir / "merges.txt");
  const fs::path out = dir / "out.gguf";
  convert_model(*load_model(dir.string()), out.string(), {});
  const GgufFile orig = GgufFile::open(gguf.string()), conv = GgufFile::open(out.string());
  EXPECT_EQ(conv.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(conv.get_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(conv.get_string_array("tokenizer.ggml.tokens"), orig.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(conv.get_string_array("tokenizer.ggml.merges"), orig.get_string_array("tokenizer.ggml.merges"));
  const auto a = load_model(out.string()), b = load_model(gguf.string());
  for (const char* text : {"He picked up the red", "  ünïcødé 🦙\n<|endoftext|>"})
    EXPECT_EQ(a->tok().encode(text), b->tok().encode(text)) << text;
  fs::remove_all(dir);
}

// The general defence: the metadata is read back through the architecture's read_config, so
// a config value a GGUF file of that architecture cannot carry is refused, naming the field.
TEST(ConvertRefuses, ConfigAGgufCannotExpress) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-tiny.gguf");
  const fs::path dir = test::scratch_path("convert", "mistral-window");
  hf_folder::write_hf_folder((test::shared_dir() / "models/synthetic/llama-spm-tiny.gguf").string(), dir, {});
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  config["model_type"] = "mistral";
  config["sliding_window"] = 64;
  std::ofstream(dir / "config.json") << config.dump();
  const fs::path out = dir / "out.gguf";
  try {
    convert_model(*load_model(dir.string()), out.string(), {});
    FAIL() << "a sliding window was dropped";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("sliding_window"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  fs::remove_all(dir);
}

// A tensor the forward pass does not use would be dropped from the converted file: refused.
// (A reranker's classifier head, cls.weight; rope_freqs.weight is in the llama table since
// 2026-12-04.)
TEST(ConvertRefuses, TensorOutsideTheTable) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-tiny.gguf");
  const GgufFile orig = GgufFile::open((test::shared_dir() / "models/synthetic/llama-spm-tiny.gguf").string());
  GgufWriter w;
  for (const auto& [key, value] : orig.metadata()) w.add(key, value);
  for (const GgufTensor& t : orig.tensors()) w.add_tensor(t.name, t.type, t.ne, t.data, t.nbytes);
  const std::vector<float> cls(8, 1.0f);
  w.add_tensor("cls.weight", DType::F32, {8}, cls.data(), cls.size() * 4);
  const fs::path in = test::scratch_path("convert", "extra.gguf"), out = test::scratch_path("convert", "extra-out.gguf");
  w.write(in.string());
  try {
    convert_model(*load_model(in.string()), out.string(), {});
    FAIL() << "cls.weight was dropped";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("cls.weight"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  fs::remove(in);
}

// A tokenizer whose GGUF form llama.cpp's converter decides its own way is refused, not
// written as something that tokenizes differently.
TEST(ConvertRefuses, VocabularyWithoutAFaithfulGgufForm) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-tiny.gguf");
  const fs::path dir = test::scratch_path("convert", "wordpiece");
  hf_folder::write_hf_folder((test::shared_dir() / "models/synthetic/llama-spm-tiny.gguf").string(), dir, {});
  const nlohmann::json tok = {{"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", {{"[UNK]", 0}, {"play", 1}, {"##ing", 2}}}}},
                              {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}}}};
  std::ofstream(dir / "tokenizer.json") << tok.dump();
  const auto model = load_model(dir.string());
  ASSERT_NE(model->tokenizer, nullptr);
  try {
    convert_model(*model, (dir / "out.gguf").string(), {});
    FAIL() << "a WordPiece vocabulary was written";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("hf-wordpiece"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("convert_hf_to_gguf.py"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// The command's refusals: each names what and hints, and leaves no file behind.
TEST(ConvertCli, RefusesWithAHint) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-small-q8_0.gguf");
  const fs::path dir = test::scratch_path("convert", "cli");
  fs::create_directories(dir);
  const std::string out = (dir / "out.gguf").string();
  std::ofstream(out) << "keep me";
  auto expect = [](const test::CliResult& r, const std::vector<std::string>& parts) {
    EXPECT_EQ(r.status, 1) << r.out;
    for (const auto& p : parts) EXPECT_NE(r.out.find(p), std::string::npos) << "missing '" << p << "' in: " << r.out;
  };
  const std::string q8 = (test::shared_dir() / "models/synthetic/llama-spm-small-q8_0.gguf").string();
  expect(test::cli("convert " + q8 + " -o " + out), {"exists", "--force"});
  std::ifstream kept(out);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "keep me");
  expect(test::cli("convert " + q8 + " -o " + out + " --force --type q3_x"), {"unknown type 'q3_x'", "q8_0"});
  // The grid i-quants are read, not written: llama-quantize writes them (IQ2_S as its IQ2_M).
  expect(test::cli("convert " + q8 + " -o " + out + " --force --type iq2_s"), {"does not write", "llama-quantize", "IQ2_M"});
  expect(test::cli("convert " + dir.string() + " -o " + (dir / "x.gguf").string()), {"config.json"});
  expect(test::cli("convert " + q8 + " -o " + (dir / "y.gguf").string() + " --type q4_0"), {"re-quantised", "HINT"});
  EXPECT_FALSE(fs::exists(dir / "y.gguf"));
  EXPECT_FALSE(fs::exists(dir / "y.gguf.part"));
  expect(test::cli("convert " + q8), {"-o OUT.gguf"});
  fs::remove_all(dir);
}

TEST(ConvertCli, WritesWithProgressAndRequantisesNothing) {
  TP_REQUIRE_SHARED("models/synthetic/llama-spm-small-q8_0.gguf");
  const fs::path out = test::scratch_path("convert", "same-q8_0.gguf");
  const std::string q8 = (test::shared_dir() / "models/synthetic/llama-spm-small-q8_0.gguf").string();
  const auto r = test::cli("convert " + q8 + " -o " + out.string() + " --type q8_0");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("token_embd.weight"), std::string::npos) << r.out;  // a progress line per tensor
  const GgufFile orig = GgufFile::open(q8), conv = GgufFile::open(out.string());
  for (const GgufTensor& t : orig.tensors()) {
    const GgufTensor* c = conv.find_tensor(t.name);
    ASSERT_NE(c, nullptr) << t.name;
    EXPECT_EQ(c->type, t.type) << t.name;
    EXPECT_EQ(std::memcmp(c->data, t.data, t.nbytes), 0) << t.name;
  }
  fs::remove(out);
}

}  // namespace
}  // namespace tp

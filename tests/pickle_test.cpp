// The safe unpickler (io/pickle.h): the values checkpoints hold, and hostile pickles written
// here opcode by opcode: globals outside the allow-list (refused by name, nothing run),
// misuse of allowed globals, memo and stack abuse, absurd lengths, truncation, nesting.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "core/error.h"
#include "fuzz/torch_samples.h"
#include "io/pickle.h"

namespace tp::pickle {
namespace {

namespace s = samples;
using namespace std::string_literals;  // opcode strings hold NUL bytes

Pickle run(const std::string& bytes, const Limits& limits = {}) {
  return unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.pkl", limits);
}

// The Error a pickle raises (failing the test when it raises none).
Error error_of(const std::string& bytes, const Limits& limits = {}) {
  try {
    run(bytes, limits);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no Error thrown";
  return Error(ErrorKind::Usage, "", "");
}

std::string text(const Error& e) { return e.where() + " | " + e.problem() + " | " + e.hint(); }

#define EXPECT_REFUSED(bytes, want_kind, needle)                                  \
  do {                                                                            \
    const Error e_ = error_of(bytes);                                             \
    EXPECT_EQ(e_.kind(), want_kind) << text(e_);                                  \
    EXPECT_NE(text(e_).find(needle), std::string::npos) << text(e_);              \
  } while (0)

TEST(Pickle, Protocol2Values) {
  const std::string p = s::proto(2) +
                        s::dict({{s::str("i"), s::integer(-7)},
                                 {s::str("l"), "]q\x01(K\x01M\x00\x01\x8a\x02\xff\x7f\x8a\x01\xfe" "e"s},
                                 {s::str("t"), s::tuple({s::str("a"), "N", "\x88"})},
                                 {s::str("f"), s::binfloat(0.25)},
                                 {s::str("again"), "h\x01"}}) +
                        ".";
  const Pickle v = run(p);
  const Ref root = v.root();
  EXPECT_EQ(v.as_int(*v.get(root, "i"), "i"), -7);
  const auto& l = v.items(*v.get(root, "l"), "l");
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(v.as_int(l[0], "l0"), 1);
  EXPECT_EQ(v.as_int(l[1], "l1"), 256);
  EXPECT_EQ(v.as_int(l[2], "l2"), 0x7fff);  // LONG1 little-endian two's complement
  EXPECT_EQ(v.as_int(l[3], "l3"), -2);
  EXPECT_EQ(*v.get(root, "again"), *v.get(root, "l"));  // the memo shares the object
  EXPECT_EQ(v.as_float(*v.get(root, "f"), "f"), 0.25);
  EXPECT_EQ(v.to_display(*v.get(root, "t")), "('a', None, True)");
  EXPECT_FALSE(v.get(root, "missing"));
  EXPECT_THROW(v.kind(static_cast<Ref>(v.size())), Error);  // checked: no read outside the tree
}

TEST(Pickle, Protocol4FramesMemoizeAndShortStrings) {
  // As Python writes {'vocab_size': 2, 'itos': {0: 'a', 1: 'b'}} with protocol 4.
  const std::string body = std::string("}\x94(\x8c\x0avocab_size\x94K\x02\x8c\x04itos\x94}\x94(K\x00\x8c\x01" "a\x94K\x01\x8c\x01" "b\x94uu."s);
  const std::string p = s::proto(4) + "\x95" + s::le(body.size(), 8) + body;
  const Pickle v = run(p);
  EXPECT_EQ(v.as_int(*v.get(v.root(), "vocab_size"), "vocab_size"), 2);
  const auto itos = v.entries(*v.get(v.root(), "itos"), "itos");
  ASSERT_EQ(itos.size(), 2u);
  EXPECT_EQ(v.as_str(itos[1].second, "itos[1]"), "b");
}

TEST(Pickle, DuplicateDictKeysKeepFirstPositionAndLastValue) {
  const Pickle v = run(s::proto(2) + s::dict({{s::str("a"), s::integer(1)}, {s::str("b"), s::integer(2)},
                                              {s::str("a"), s::integer(3)}}) + ".");
  const auto e = v.entries(v.root(), "root");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(v.as_str(e[0].first, "k"), "a");
  EXPECT_EQ(v.as_int(e[0].second, "v"), 3);
}

// Python writes numpy scalars as scalar(dtype, _codecs.encode(latin-1 text)) with protocol 2
// and with raw bytes from protocol 3.
TEST(Pickle, NumpyScalars) {
  const std::string dtype = s::global("numpy", "dtype") + s::tuple({s::str("f8"), "\x89", "\x88"}) + "R" +
                            s::tuple({s::integer(3), s::str("<"), "N", "N", "N", s::integer(-1), s::integer(-1),
                                      s::integer(0)}) + "b";
  // 1.5 as a little-endian double: 00 .. 00 f8 3f; latin-1 0xf8 is U+00F8, UTF-8 c3 b8.
  const std::string latin1 = s::global("_codecs", "encode") +
                             s::tuple({s::str(std::string(6, '\0') + "\xc3\xb8?"), s::str("latin1")}) + "R";
  Pickle v = run(s::proto(2) + s::global("numpy.core.multiarray", "scalar") + s::tuple({dtype, latin1}) + "R.");
  EXPECT_EQ(v.as_float(v.root(), "loss"), 1.5);
  const std::string i4 = s::global("numpy", "dtype") + s::tuple({s::str("i4"), "\x89", "\x88"}) + "R";
  v = run(s::proto(3) + s::global("numpy._core.multiarray", "scalar") + s::tuple({i4, "C\x04\xfe\xff\xff\xff"}) + "R.");
  EXPECT_EQ(v.as_int(v.root(), "iter"), -2);
  const std::string be = s::global("numpy", "dtype") + s::tuple({s::str("f8"), "\x89", "\x88"}) + "R" +
                         s::tuple({s::integer(3), s::str(">")}) + "b.";
  EXPECT_REFUSED(s::proto(2) + be, ErrorKind::Unsupported, "big-endian numpy dtype");
}

// ---- hostile globals -----------------------------------------------------------------------

std::string call(const std::string& module, const std::string& name, const std::string& arg) {
  return s::proto(2) + s::global(module, name) + s::str(arg) + "\x85R.";
}

TEST(Pickle, RefusesEveryGlobalOutsideTheAllowList) {
  const std::pair<const char*, const char*> refused[] = {
      {"os", "system"},        {"posix", "system"},     {"nt", "system"},       {"builtins", "eval"},
      {"builtins", "exec"},    {"builtins", "getattr"}, {"__builtin__", "eval"}, {"subprocess", "Popen"},
      {"subprocess", "check_output"}, {"builtins", "set"}, {"builtins", "frozenset"},
      {"torch.storage", "_load_from_bytes"}, {"torch", "load"}, {"torch.nn.modules.linear", "Linear"},
      {"collections", "OrderedDictX"}, {"torch._utils", "_rebuild_tensor"}, {"my.unknown", "thing"}};
  for (const auto& [module, name] : refused) {
    const std::string full = std::string(module) + "." + name;
    const Error e = error_of(call(module, name, "x"));
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported) << full;
    EXPECT_NE(e.problem().find("the global " + full + ","), std::string::npos) << text(e);
    EXPECT_NE(e.hint().find("never executes code"), std::string::npos) << text(e);
    // The same through STACK_GLOBAL (protocol 4).
    const Error e4 = error_of(s::proto(4) + s::str(module) + s::str(name) + "\x93" + s::str("x") + "\x85R.");
    EXPECT_EQ(e4.kind(), ErrorKind::Unsupported) << full;
  }
}

// The classic exploit: os.system("touch MARKER"). It must be refused and nothing run.
TEST(Pickle, NothingIsExecuted) {
  const auto dir = std::filesystem::temp_directory_path() / ("tp-pickle-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto marker = dir / "MARKER";
  for (const auto& [module, name] : {std::pair{"os", "system"}, {"posix", "system"}, {"subprocess", "getoutput"}}) {
    const Error e = error_of(call(module, name, "touch " + marker.string()));
    EXPECT_NE(e.problem().find(std::string(module) + "." + name), std::string::npos) << text(e);
  }
  // Hidden behind allowed values and an OrderedDict's BUILD.
  EXPECT_THROW(run(s::proto(2) + s::empty_ordered_dict() + s::dict({{s::str("k"), s::global("os", "system")}}) + "b."),
               Error);
  EXPECT_FALSE(std::filesystem::exists(marker));
  std::filesystem::remove_all(dir);
}

TEST(Pickle, AllowedGlobalsOnlyInTheirOwnRoles) {
  EXPECT_REFUSED(s::proto(2) + s::global("torch", "FloatStorage") + "(tR.", ErrorKind::Unsupported,
                 "appears outside a persistent id");
  EXPECT_REFUSED(s::proto(2) + s::str("os.system") + "(tR.", ErrorKind::Format, "REDUCE applies a value of type str");
  EXPECT_REFUSED(s::proto(2) + s::global("torch._utils", "_rebuild_tensor_v2") + "(t\x81.", ErrorKind::Unsupported,
                 "NEWOBJ builds the global torch._utils._rebuild_tensor_v2");
  EXPECT_REFUSED(s::proto(2) + s::str("x") + "}b.", ErrorKind::Unsupported, "BUILD sets the state of a value of type str");
  EXPECT_REFUSED(s::proto(2) + s::tuple({s::str("module"), s::str("x")}) + "Q.", ErrorKind::Unsupported,
                 "persistent id");
  EXPECT_REFUSED(s::proto(2) + s::global("_codecs", "encode") + s::tuple({s::str("x"), s::str("rot13")}) + "R.",
                 ErrorKind::Unsupported, "encode(str, 'latin1')");
  // A tensor view past its storage's end.
  EXPECT_REFUSED(s::proto(2) + s::tensor("FloatStorage", "0", 4, 2, {3}, {1}) + ".", ErrorKind::Format,
                 "reaches outside its storage 0 of 4 elements");
  EXPECT_REFUSED(s::proto(2) + s::tensor("FloatStorage", "0", 4, 0, {2, 2}, {1 << 30, 1 << 30}) + ".", ErrorKind::Format,
                 "reaches outside");
}

TEST(Pickle, StoragesAreOnePerKey) {
  const Pickle v = run(s::proto(2) + s::tuple({s::tensor("HalfStorage", "7", 6, 0, {2, 3}, {3, 1}),
                                               s::tensor("HalfStorage", "7", 6, 3, {3}, {1})}) + ".");
  ASSERT_EQ(v.storages().size(), 1u);
  const auto& items = v.items(v.root(), "root");
  EXPECT_EQ(v.tensor(items[0], "a").storage, v.tensor(items[1], "b").storage);
  EXPECT_EQ(v.tensor(items[1], "b").offset, 3);
  EXPECT_EQ(storage_dtype(v.storages()[0].type), DType::F16);
  EXPECT_REFUSED(s::proto(2) + s::tuple({s::tensor("HalfStorage", "7", 6, 0, {2}, {1}),
                                         s::tensor("FloatStorage", "7", 3, 0, {2}, {1})}) + ".",
                 ErrorKind::Unsupported, "referenced as FloatStorage of 3 and as HalfStorage of 6");
}

// ---- malformed input -------------------------------------------------------------------------

TEST(Pickle, OpcodesOutsideTheBinaryProtocolsAreRefusedByName) {
  EXPECT_REFUSED(s::proto(2) + "I42\n.", ErrorKind::Unsupported, "opcode INT (0x49) is not read");
  EXPECT_REFUSED(s::proto(2) + "\x8f.", ErrorKind::Unsupported, "opcode EMPTY_SET");
  EXPECT_REFUSED(s::proto(2) + "\x82\x01.", ErrorKind::Unsupported, "EXT1");
  const Error e = error_of(s::proto(2) + "N\xff.");
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_NE(e.problem().find("unknown opcode 0xff"), std::string::npos) << text(e);
  EXPECT_NE(e.where().find("@ byte 3"), std::string::npos) << text(e);
  EXPECT_REFUSED(s::proto(6) + "N.", ErrorKind::Unsupported, "protocol 6");
}

TEST(Pickle, MemoAndStackAbuse) {
  EXPECT_REFUSED(s::proto(2) + "h\x05.", ErrorKind::Format, "memo entry 5 was never stored");
  EXPECT_REFUSED(s::proto(2) + "q\x00."s, ErrorKind::Format, "the stack is empty");
  EXPECT_REFUSED(s::proto(2) + ".", ErrorKind::Format, "STOP: the stack is empty");
  EXPECT_REFUSED(s::proto(2) + "0.", ErrorKind::Format, "POP: the stack is empty");
  EXPECT_REFUSED(s::proto(2) + "N(a.", ErrorKind::Format, "below the last MARK");  // APPEND reaching under a MARK
  EXPECT_REFUSED(s::proto(2) + "Nt.", ErrorKind::Format, "no MARK");
  EXPECT_REFUSED(s::proto(2) + "(N(Nu.", ErrorKind::Format, "odd number");
  EXPECT_REFUSED(s::proto(2) + "NNNs.", ErrorKind::Format, "not a dict");
  Limits small;
  small.max_memo = 3;
  std::string puts = s::proto(2) + "N";
  for (uint32_t i = 0; i < 4; ++i) puts += "r" + s::le(i * 1000003u, 4);  // sparse, far-apart keys
  EXPECT_NE(text(error_of(puts + ".", small)).find("more than 3 memo entries"), std::string::npos);
  small.max_stack = 100;
  EXPECT_NE(text(error_of(s::proto(2) + std::string(101, 'N') + ".", small)).find("more than 100 values on the stack"),
            std::string::npos);
  small.max_marks = 10;
  EXPECT_NE(text(error_of(s::proto(2) + std::string(11, '(') + ".", small)).find("open MARKs"), std::string::npos);
  small.max_objects = 50;
  EXPECT_NE(text(error_of(s::proto(2) + "]" + std::string(60, ']') + ".", small)).find("more than 50 values"),
            std::string::npos);
}

TEST(Pickle, AbsurdLengthsAndWideIntegers) {
  EXPECT_REFUSED(s::proto(4) + "\x8d" + s::le(1ull << 62, 8) + "abc.", ErrorKind::Format,
                 "BINUNICODE8 needs 4611686018427387904 bytes but only 4 remain");
  EXPECT_REFUSED(s::proto(2) + "X" + s::le(0xFFFFFFFFu, 4) + ".", ErrorKind::Format, "remain");
  EXPECT_REFUSED(s::proto(2) + "T" + s::le(0x80000000u, 4) + ".", ErrorKind::Format, "negative BINSTRING length");
  EXPECT_REFUSED(s::proto(2) + "\x8b" + s::le(0xFFFFFFFFu, 4) + ".", ErrorKind::Format, "negative LONG4 length");
  EXPECT_REFUSED(s::proto(2) + "\x8a\x09" + std::string(9, '\x01') + ".", ErrorKind::Unsupported, "9 bytes");
  EXPECT_REFUSED(s::proto(2) + "\x8b" + s::le(1u << 30, 4) + ".", ErrorKind::Format, "1073741824 bytes");
  EXPECT_REFUSED(s::proto(2) + "c" + std::string(5000, 'a') + "\nb\n.", ErrorKind::Format, "longer than 1024");
}

TEST(Pickle, EveryTruncationIsAnError) {
  const std::string full = s::mini_checkpoint_pickle();
  for (size_t n = 0; n < full.size(); ++n) EXPECT_THROW(run(full.substr(0, n)), Error) << n;
  EXPECT_NO_THROW(run(full));
}

// TUPLE1 wraps the last value again and again: nesting grows, the stack does not.
TEST(Pickle, DeepNestingIsCappedAndCyclesAreHarmless) {
  EXPECT_REFUSED(s::proto(2) + "N" + std::string(100000, '\x85') + ".", ErrorKind::Format, "nested deeper than 256");
  EXPECT_REFUSED(s::proto(2) + "]" + std::string(100000, '\x85') + ".", ErrorKind::Format, "nested deeper than 256");
  const Pickle deep = run(s::proto(2) + "N" + std::string(200, '\x85') + ".");  // within the cap: fine
  EXPECT_NE(deep.to_display(deep.root()).find("..."), std::string::npos);
  // l = []; l.append(l); l.append(l): a cycle through the memo.
  const Pickle cyc = run(s::proto(2) + "]q\x00h\x00" "ah\x00" "a."s);
  EXPECT_EQ(cyc.items(cyc.root(), "l")[0], cyc.root());
  EXPECT_LE(cyc.to_display(cyc.root()).size(), 203u);
  // A DAG that doubles at each level: display stays bounded.
  std::string dag = s::proto(2) + "N";
  for (int i = 0; i < 60; ++i) dag += "2\x86";
  const Pickle d = run(dag + ".");
  EXPECT_LE(d.to_display(d.root()).size(), 203u);
}

TEST(Pickle, DictKeysMustBeHashableScalars) {
  EXPECT_REFUSED(s::proto(2) + "}]Ns.", ErrorKind::Unsupported, "a dict key of type list");
}

}  // namespace
}  // namespace tp::pickle

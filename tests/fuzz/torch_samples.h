// Small torch.save-like files built byte by byte, for the tests (torch_file_test.cpp,
// pickle_test.cpp) and the fuzz seeds (make_seeds.cpp): pickle opcodes, a zip writer with
// the layout options torch and other writers use, and a miniature nanoGPT checkpoint.
// No Python or torch is needed to make them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io/zip_reader.h"

namespace tp::samples {

// ---- pickle opcodes (Python's Lib/pickle.py) ----------------------------------------------
inline std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}
inline std::string proto(int v) { return std::string("\x80", 1) + static_cast<char>(v); }
// (Built by appending: GCC 12 warns falsely, -Wrestrict, on "literal" + std::string.)
inline std::string str(const std::string& s) { return std::string("X").append(le(s.size(), 4)).append(s); }  // BINUNICODE
inline std::string integer(int32_t v) { return std::string("J").append(le(static_cast<uint32_t>(v), 4)); }  // BININT
inline std::string global(const std::string& module, const std::string& name) {
  return std::string("c").append(module).append("\n").append(name).append("\n");
}
inline std::string binfloat(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  std::string s = "G";
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((u >> (8 * i)) & 0xFF));
  return s;
}
inline std::string tuple(const std::vector<std::string>& items) {
  std::string s = "(";
  for (const auto& i : items) s += i;
  return s + "t";
}
inline std::string empty_ordered_dict() { return global("collections", "OrderedDict") + ")R"; }
// _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, sizes, strides, False, OrderedDict())
inline std::string tensor(const std::string& storage_type, const std::string& key, int numel, int offset,
                          const std::vector<int>& sizes, const std::vector<int>& strides) {
  std::vector<std::string> sz, st;
  for (int s : sizes) sz.push_back(integer(s));
  for (int s : strides) st.push_back(integer(s));
  return global("torch._utils", "_rebuild_tensor_v2") + "(" +
         tuple({str("storage"), global("torch", storage_type), str(key), str("cpu"), integer(numel)}) + "Q" +
         integer(offset) + tuple(sz) + tuple(st) + "\x89" + empty_ordered_dict() + "tR";
}
// A dict from key/value opcode strings: EMPTY_DICT MARK k v ... SETITEMS.
inline std::string dict(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string s = "}(";
  for (const auto& [k, v] : kv) s += k + v;
  return s + "u";
}

// ---- zip ----------------------------------------------------------------------------------
struct ZipOptions {
  bool zip64_end = true;     // Zip64 EOCD + locator, as torch's writer always adds
  bool zip64_extra = false;  // sizes and offsets as 0xFFFFFFFF with a Zip64 extra field
  bool align64 = true;       // "FB" padding so data starts on 64 bytes, as torch does
};

struct ZipFileEntry {
  std::string name;
  std::string data;
  uint16_t method = 0;  // written as is (the bytes stay stored): to test refusal
};

inline std::vector<uint8_t> make_zip(const std::vector<ZipFileEntry>& entries, const ZipOptions& o = {}) {
  std::string out, cd;
  for (const auto& e : entries) {
    const uint64_t offset = out.size();
    const uint32_t crc = zip_crc32(reinterpret_cast<const uint8_t*>(e.data.data()), e.data.size());
    std::string extra;
    if (o.align64) {
      const size_t unpadded = offset + 30 + e.name.size() + 4;
      extra = std::string("FB").append(le((64 - unpadded % 64) % 64, 2));
      extra.append((64 - unpadded % 64) % 64, 'Z');
    }
    out += le(0x04034b50, 4) + le(20, 2) + le(0x0800, 2) + le(e.method, 2) + le(0, 4) + le(crc, 4) +
           le(e.data.size(), 4) + le(e.data.size(), 4) + le(e.name.size(), 2) + le(extra.size(), 2) + e.name + extra + e.data;
    const uint32_t small = o.zip64_extra ? 0xFFFFFFFFu : static_cast<uint32_t>(e.data.size());
    const std::string z64 = o.zip64_extra ? le(1, 2) + le(24, 2) + le(e.data.size(), 8) + le(e.data.size(), 8) + le(offset, 8) : "";
    cd += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0x0800, 2) + le(e.method, 2) + le(0, 4) + le(crc, 4) +
          le(small, 4) + le(small, 4) + le(e.name.size(), 2) + le(z64.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
          le(0, 4) + le(o.zip64_extra ? 0xFFFFFFFFu : offset, 4) + e.name + z64;
  }
  const uint64_t cd_offset = out.size();
  out += cd;
  if (o.zip64_end) {
    const uint64_t end64 = out.size();
    out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(entries.size(), 8) +
           le(entries.size(), 8) + le(cd.size(), 8) + le(cd_offset, 8);
    out += le(0x07064b50, 4) + le(0, 4) + le(end64, 8) + le(1, 4);
  }
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) + le(cd.size(), 4) +
         le(cd_offset, 4) + le(0, 2);
  return {out.begin(), out.end()};
}

// ---- a miniature nanoGPT checkpoint ---------------------------------------------------------
inline std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// data.pkl: {'model': {'_orig_mod.wte.weight': [4,3] over storage 0, '_orig_mod.lm_head.weight':
// the same storage, 'ln.bias': [3], 'wT': storage 0 transposed}, 'optimizer': {'state': {0:
// {'exp_avg': [4,3] over storage 3}}}, 'model_args': {'n_layer': 1, 'bias': True, 'dropout':
// 0.0}, 'iter_num': 5, 'best_val_loss': 0-d tensor 1.5}
inline std::string mini_checkpoint_pickle() {
  const std::string wte = tensor("FloatStorage", "0", 12, 0, {4, 3}, {3, 1});
  return proto(2) +
         dict({{str("model"), dict({{str("_orig_mod.wte.weight"), wte},
                                    {str("_orig_mod.lm_head.weight"), tensor("FloatStorage", "0", 12, 0, {4, 3}, {3, 1})},
                                    {str("ln.bias"), tensor("FloatStorage", "1", 3, 0, {3}, {1})},
                                    {str("wT"), tensor("FloatStorage", "0", 12, 1, {3, 2}, {1, 3})}})},
               {str("optimizer"),
                dict({{str("state"), dict({{integer(0), dict({{str("exp_avg"), tensor("FloatStorage", "3", 12, 0, {4, 3}, {3, 1})}})}})}})},
               {str("model_args"), dict({{str("n_layer"), integer(1)}, {str("bias"), "\x88"}, {str("dropout"), binfloat(0.0)}})},
               {str("iter_num"), integer(5)},
               {str("best_val_loss"), tensor("FloatStorage", "2", 1, 0, {}, {})}}) +
         ".";
}

inline std::vector<ZipFileEntry> mini_checkpoint_entries() {
  return {{"ckpt/data.pkl", mini_checkpoint_pickle()},
          {"ckpt/byteorder", "little"},
          {"ckpt/data/0", floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})},
          {"ckpt/data/1", floats({0.5f, -0.5f, 2})},
          {"ckpt/data/2", floats({1.5f})},
          {"ckpt/data/3", floats(std::vector<float>(12, 7))},
          {"ckpt/version", "3\n"}};
}

inline std::vector<uint8_t> mini_checkpoint(const ZipOptions& o = {}) { return make_zip(mini_checkpoint_entries(), o); }

}  // namespace tp::samples

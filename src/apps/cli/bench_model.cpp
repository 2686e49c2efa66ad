#include "apps/cli/bench_model.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "fixtures/bench_shapes.h"

namespace tp::cli {

std::string bench_model_path(const std::string& shape, const std::string& type) {
  namespace fs = std::filesystem;
  const bool old_rwkv7_name = type == "rwkv7-f16";
  const fixtures::FixtureSpec spec =
      fixtures::bench_spec(fixtures::find_bench_shape(old_rwkv7_name ? "rwkv7" : shape), old_rwkv7_name ? "f16" : type);
  const char* tmp = std::getenv("TMPDIR");
  const fs::path dir = fs::path(tmp && *tmp ? tmp : "/tmp") / "tokenprobe-bench";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the benchmark model folder: " + ec.message());
  const fs::path path = dir / (spec.name + ".gguf");
  if (!fs::exists(path)) {
    std::fprintf(stderr, "writing %s ...\n", path.c_str());
    fixtures::write_fixture(spec, path.string());
  }
  return path.string();
}

}  // namespace tp::cli

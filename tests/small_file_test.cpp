// read_small_file refuses what is not the small file it was asked for before reading it, and
// reads pipes (a prompt given as /dev/stdin or <(...)) up to the same limit.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "core/error.h"
#include "io/small_file.h"
#include "test_support.h"

namespace tp {
namespace {

namespace fs = std::filesystem;

fs::path write_file(const std::string& name, const std::string& bytes) {
  const fs::path p = test::scratch_path("small-file", name);
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

Error read_error(const fs::path& p, uint64_t limit) {
  try {
    read_small_file(p, "the test file", limit, "the hint");
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << p << " was read";
  return Error(ErrorKind::Io, "", "");
}

TEST(SmallFile, ReadsEveryByte) {
  std::string bytes(200000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 251);
  EXPECT_EQ(read_small_file(write_file("whole.bin", bytes), "the test file", bytes.size()), bytes);
  EXPECT_EQ(read_small_file(write_file("empty.bin", ""), "the test file", 0), "");
}

TEST(SmallFile, RefusesADirectoryAMissingFileAndALargeFile) {
  const fs::path dir = write_file("d/x", "x").parent_path();
  Error e = read_error(dir, 100);
  EXPECT_EQ(e.kind(), ErrorKind::Io);
  EXPECT_NE(std::string(e.what()).find("is a directory, not the test file"), std::string::npos) << e.what();

  e = read_error(dir / "absent.json", 100);
  EXPECT_EQ(e.kind(), ErrorKind::Io);
  EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("the hint"), std::string::npos) << e.what();

  e = read_error(write_file("large.bin", std::string(2049, 'a')), 2048);
  EXPECT_EQ(e.kind(), ErrorKind::Format);
  EXPECT_NE(std::string(e.what()).find("the test file is 2.0 KiB, more than the 2.0 KiB it may have"), std::string::npos)
      << e.what();
}

// A FIFO has no size to check first: it is counted as it is read.
TEST(SmallFile, ReadsAPipeUpToTheLimit) {
  ::signal(SIGPIPE, SIG_IGN);  // the writer of the refused pipe finds its reader gone
  for (const size_t n : {size_t{5000}, size_t{300000}}) {
    const fs::path fifo = test::scratch_path("small-file", "fifo-" + std::to_string(n));
    fs::remove(fifo);
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    std::thread writer([&] { std::ofstream(fifo, std::ios::binary) << std::string(n, 'p'); });
    if (n <= 100000) {
      EXPECT_EQ(read_small_file(fifo, "the test file", 100000), std::string(n, 'p'));
    } else {
      const Error e = read_error(fifo, 100000);
      EXPECT_EQ(e.kind(), ErrorKind::Format);
      EXPECT_NE(std::string(e.what()).find("is longer than the 97.7 KiB"), std::string::npos) << e.what();
    }
    writer.join();
  }
}

}  // namespace
}  // namespace tp

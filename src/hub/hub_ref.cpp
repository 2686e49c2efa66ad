#include "hub/hub_ref.h"

#include <cctype>

#include "core/error.h"

namespace tp::hub {

namespace {

constexpr size_t kMaxRepoId = 96;  // huggingface_hub's validate_repo_id
constexpr size_t kMaxRevision = 255;
constexpr size_t kMaxPath = 1024;

bool repo_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; }

// One OWNER or NAME: huggingface_hub's rules (word characters, '-' and '.', not at either end,
// no "--" or "..", which the cache's folder name would make ambiguous).
bool valid_repo_part(const std::string& s) {
  if (s.empty() || s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
  for (char c : s)
    if (!repo_char(c)) return false;
  return s.find("--") == std::string::npos && s.find("..") == std::string::npos;
}

// '/'-separated, no empty, "." or ".." component, no backslash or control byte.
bool valid_relative_path(const std::string& s) {
  if (s.empty() || s.front() == '/' || s.back() == '/') return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('/', start);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F || c == '\\') return false;
  return true;
}

std::string percent_decode_slashes(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && s[i + 1] == '2' && (s[i + 2] == 'F' || s[i + 2] == 'f')) {
      out.push_back('/');
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

bool is_hub_uri(const std::string& text) { return text.rfind("hf://", 0) == 0; }

bool is_commit_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

void check_repo_id(const std::string& repo, const std::string& what) {
  const size_t slash = repo.find('/');
  const bool ok = slash != std::string::npos && repo.size() <= kMaxRepoId && valid_repo_part(repo.substr(0, slash)) &&
                  valid_repo_part(repo.substr(slash + 1));
  if (!ok)
    throw Error(ErrorKind::Usage, what, "'" + repo + "' is not a repository id",
                "write OWNER/NAME (letters, digits, '_', '-', '.'; at most 96 characters), e.g. roneneldan/TinyStories-1M");
}

void check_revision(const std::string& revision, const std::string& what) {
  if (revision.size() > kMaxRevision || !valid_relative_path(revision))
    throw Error(ErrorKind::Usage, what, "'" + revision + "' is not a revision",
                "give a branch, a tag or a commit hash (a '/' inside it written as %2F in an hf:// address)");
}

void check_repo_path(const std::string& path, const std::string& what) {
  if (path.size() > kMaxPath || !valid_relative_path(path))
    throw Error(ErrorKind::Usage, what, "'" + path + "' is not a file path inside a repository",
                "give a relative path such as model.safetensors or sub/dir/file.gguf (no '..', no leading '/')");
}

HubRef parse_hub_uri(const std::string& uri) {
  if (!is_hub_uri(uri))
    throw Error(ErrorKind::Usage, uri, "not an hf:// address", "write hf://OWNER/NAME[@REVISION][/FILE]");
  const std::string rest = uri.substr(5);
  // OWNER/NAME is the first two components; then an optional @REVISION glued to NAME, then FILE.
  const size_t owner_end = rest.find('/');
  if (owner_end == std::string::npos)
    throw Error(ErrorKind::Usage, uri, "no repository name after the owner", "write hf://OWNER/NAME[@REVISION][/FILE]");
  const size_t name_end = std::min(rest.find('/', owner_end + 1), rest.size());
  std::string name = rest.substr(owner_end + 1, name_end - owner_end - 1);
  HubRef ref;
  if (const size_t at = name.find('@'); at != std::string::npos) {
    ref.revision = percent_decode_slashes(name.substr(at + 1));
    name.resize(at);
  }
  ref.repo = rest.substr(0, owner_end) + "/" + name;
  if (name_end < rest.size()) ref.file = rest.substr(name_end + 1);
  check_repo_id(ref.repo, uri);
  check_revision(ref.revision, uri);
  if (name_end < rest.size()) check_repo_path(ref.file, uri);
  return ref;
}

GgufRepoRef parse_gguf_repo(const std::string& text) {
  GgufRepoRef ref;
  const size_t colon = text.find(':');
  ref.repo = text.substr(0, colon);
  if (colon != std::string::npos) {
    ref.quant = text.substr(colon + 1);
    bool ok = !ref.quant.empty();
    for (char c : ref.quant) ok = ok && repo_char(c);
    if (!ok)
      throw Error(ErrorKind::Usage, "-hf " + text, "'" + ref.quant + "' is not a quantisation tag",
                  "write OWNER/NAME:QUANT, e.g. -hf ggml-org/gemma-3-1b-it-GGUF:Q8_0");
  }
  check_repo_id(ref.repo, "-hf " + text);
  return ref;
}

std::string to_uri(const HubRef& ref) {
  std::string revision;
  for (char c : ref.revision) revision += c == '/' ? std::string("%2F") : std::string(1, c);
  std::string uri = "hf://" + ref.repo + "@" + revision;
  if (!ref.file.empty()) uri += "/" + ref.file;
  return uri;
}

}  // namespace tp::hub

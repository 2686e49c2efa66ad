#include "hub/hub_fetch.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hub/hf_cache.h"
#include "hub/hub_error.h"
#include "hub/http_download.h"
#include "hub/repo_files.h"
#include "io/small_file.h"

namespace tp::hub {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxListing = 32u << 20;  // the API's JSON for a repository with very many files

// RFC 3986 percent-encoding; '/' kept in file paths, encoded in revisions (refs/pr/1), as
// huggingface_hub's quote() calls do.
std::string url_escape(const std::string& s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string resolve_url(const HubSettings& s, const HubRef& ref) {
  return s.endpoint + "/" + ref.repo + "/resolve/" + url_escape(ref.revision, false) + "/" + url_escape(ref.file, true);
}

HubError not_cached(const HubRef& ref, const std::string& missing, bool offline) {
  return HubError(HubFailure::NotCached, to_uri(ref),
                  std::string(offline ? "HF_HUB_OFFLINE=1" : "the Hub cannot be reached") + " and the cache lacks " + missing,
                  "run once with the network (HF_HUB_OFFLINE unset) or `huggingface-cli download " + ref.repo +
                      "` to fill the cache, or set HF_HUB_CACHE / HF_HOME to the cache that has it");
}

// The file from the cache alone (offline, or the Hub unreachable); throws NotCached naming
// what is missing.
std::string cached_file(const HfCache& cache, const HubRef& ref, bool offline) {
  const auto commit = cache.commit_of(ref.revision);
  if (!commit) throw not_cached(ref, (cache.repo_dir() / "refs" / ref.revision).string() + " (the commit of " + ref.revision + ")", offline);
  if (auto p = cache.cached(*commit, ref.file)) return p->string();
  throw not_cached(ref, cache.snapshot_file(*commit, ref.file).string(), offline);
}

struct FileMetadata {
  std::string commit, etag, location;
  uint64_t size = 0;
};

// huggingface_hub's get_hf_file_metadata: the HEAD's X-Repo-Commit, X-Linked-Etag (an LFS
// file's SHA-256) or ETag, X-Linked-Size or Content-Length, and where the bytes are.
FileMetadata head_metadata(const HttpClient& http, const HubRef& ref) {
  const std::string url = resolve_url(http.settings(), ref);
  const HttpResponse r = http.head(url);
  check_hub_status(r, http.settings(), ref.repo, ref.file + " at " + ref.revision);
  FileMetadata m;
  m.commit = r.header("x-repo-commit");
  const std::string etag = r.header("x-linked-etag").empty() ? r.header("etag") : r.header("x-linked-etag");
  const std::string size = r.header("x-linked-size").empty() ? r.header("content-length") : r.header("x-linked-size");
  if (!is_commit_hash(m.commit) || etag.empty() || size.empty())
    throw HubError(HubFailure::BadResponse, to_uri(ref), "the answer lacks X-Repo-Commit, ETag or the size",
                   "the endpoint (HF_ENDPOINT) does not behave like the HuggingFace Hub; a proxy may strip headers");
  m.etag = normalise_etag(etag);
  char* end = nullptr;
  m.size = std::strtoull(size.c_str(), &end, 10);
  if (*end != '\0') throw HubError(HubFailure::BadResponse, to_uri(ref), "the size '" + size.substr(0, 40) + "' is not a number");
  m.location = r.redirect.empty() ? r.url : r.redirect;
  return m;
}

std::vector<std::string> cached_listing(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (fs::is_regular_file(it->path(), ec)) files.push_back(it->path().lexically_relative(dir).generic_string());
  return files;
}

RepoListing parse_listing(const HttpResponse& r, const std::string& where) {
  RepoListing out;
  try {
    const auto j = nlohmann::json::parse(r.body);
    out.commit = j.at("sha").get<std::string>();
    for (const auto& s : j.at("siblings")) {
      const std::string f = s.at("rfilename").get<std::string>();
      check_repo_path(f, where + ": a file name in the listing");
      out.files.push_back(f);
    }
  } catch (const nlohmann::json::exception& e) {
    throw HubError(HubFailure::BadResponse, where, std::string("the file listing is not the Hub's JSON: ") + e.what(),
                   "the endpoint (HF_ENDPOINT) does not behave like the HuggingFace Hub");
  }
  if (!is_commit_hash(out.commit))
    throw HubError(HubFailure::BadResponse, where, "the listing's \"sha\" is not a commit hash");
  return out;
}

RepoListing listing_from_cache(const HfCache& cache, const HubRef& ref, bool offline) {
  const auto commit = cache.commit_of(ref.revision);
  if (!commit) throw not_cached(ref, (cache.repo_dir() / "refs" / ref.revision).string() + " (the commit of " + ref.revision + ")", offline);
  const fs::path dir = cache.snapshot_dir(*commit);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw not_cached(ref, "the snapshot folder " + dir.string(), offline);
  return {*commit, cached_listing(dir), true};
}

}  // namespace

RepoListing list_repo(const std::string& repo, const std::string& revision, const HubSettings& settings) {
  const HfCache cache(settings.cache_dir, repo);
  const HubRef ref{repo, revision, ""};
  check_revision(revision, "the revision");
  if (settings.offline) return listing_from_cache(cache, ref, true);
  const HttpClient http(settings);
  HttpResponse r;
  try {
    r = http.get(settings.endpoint + "/api/models/" + repo + "/revision/" + url_escape(revision, false), kMaxListing);
  } catch (const HubError& e) {
    // As huggingface_hub does: no network, but a cached snapshot for this revision: use it.
    if (e.failure() != HubFailure::Connection || !cache.commit_of(revision)) throw;
    return listing_from_cache(cache, ref, false);
  }
  check_hub_status(r, settings, repo, "the file list at " + revision);
  return parse_listing(r, to_uri(ref));
}

std::string fetch_file(const HubRef& ref, const HubSettings& settings) {
  check_repo_path(ref.file, to_uri(ref));
  const HfCache cache(settings.cache_dir, ref.repo);
  // A commit's files never change: a cached one is the answer without asking.
  if (is_commit_hash(ref.revision))
    if (auto p = cache.cached(ref.revision, ref.file)) return p->string();
  if (settings.offline) return cached_file(cache, ref, true);
  const HttpClient http(settings);
  FileMetadata m;
  try {
    m = head_metadata(http, ref);
  } catch (const HubError& e) {
    if (e.failure() != HubFailure::Connection) throw;
    return cached_file(cache, ref, false);
  }
  cache.write_ref(ref.revision, m.commit);
  if (auto p = cache.cached(m.commit, ref.file)) return p->string();
  const BlobLock lock(settings.cache_dir, cache, m.etag);
  std::error_code ec;
  if (!fs::exists(cache.blob(m.etag), ec))  // checked under the lock: another process may just have fetched it
    http.download(m.location, cache.blob(m.etag), {m.size, is_sha256_hex(m.etag) ? m.etag : ""}, ref.file);
  return cache.link(m.commit, ref.file, m.etag).string();
}

std::string fetch_model_folder(const HubRef& ref, const HubSettings& settings) {
  const RepoListing listing = list_repo(ref.repo, ref.revision, settings);
  std::vector<std::string> files = model_folder_files(listing.files);
  if (files.empty())
    throw HubError(HubFailure::EntryNotFound, to_uri(ref),
                   "holds none of the files of a model folder (config.json, tokenizer.json, *.safetensors, pytorch_model.bin)",
                   "for one file write hf://" + ref.repo + "/FILE; for a GGUF repository -hf " + ref.repo + ":QUANT");
  const HubRef at_commit{ref.repo, listing.commit, ""};
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string path = fetch_file({ref.repo, listing.commit, files[i]}, settings);
    if (!is_weight_index(files[i])) continue;
    for (const auto& shard : index_shards(read_small_file(path, "the weight index", kMaxMetadataFileBytes), to_uri({ref.repo, listing.commit, files[i]}))) {
      if (std::find(listing.files.begin(), listing.files.end(), shard) == listing.files.end())
        throw (listing.from_cache ? not_cached(at_commit, "the weight shard " + shard, settings.offline)
                                  : HubError(HubFailure::EntryNotFound, to_uri(ref),
                                             files[i] + " names " + shard + ", which the repository does not hold"));
      files.push_back(shard);
    }
  }
  if (!listing.from_cache) HfCache(settings.cache_dir, ref.repo).write_ref(ref.revision, listing.commit);
  return HfCache(settings.cache_dir, ref.repo).snapshot_dir(listing.commit).string();
}

std::string fetch_gguf(const GgufRepoRef& ref, const HubSettings& settings) {
  const RepoListing listing = list_repo(ref.repo, kDefaultRevision, settings);
  const auto parts = pick_gguf(listing.files, ref.quant, ref.repo);
  std::string first;
  for (const auto& part : parts) {
    const std::string path = fetch_file({ref.repo, listing.commit, part}, settings);
    if (first.empty()) first = path;
  }
  if (!listing.from_cache) HfCache(settings.cache_dir, ref.repo).write_ref(kDefaultRevision, listing.commit);
  return first;
}

std::string fetch(const HubRef& ref, const HubSettings& settings) {
  return ref.file.empty() ? fetch_model_folder(ref, settings) : fetch_file(ref, settings);
}

}  // namespace tp::hub

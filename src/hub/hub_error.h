// The Hub's failures as one typed error: tp::Error (so every caller that reports a tp::Error
// reports these) plus what went wrong in Hub terms, for callers and tests that act on it.
#pragma once
#include "core/error.h"

namespace tp::hub {

enum class HubFailure {
  Gated,             // 401/403 for a gated repository: its licence must be accepted
  Unauthorized,      // 401/403 otherwise: no token, or one without access
  RepoNotFound,      // 404 X-Error-Code RepoNotFound (also private repositories without a token)
  RevisionNotFound,  // 404 X-Error-Code RevisionNotFound
  EntryNotFound,     // 404 X-Error-Code EntryNotFound, or a file the listing does not hold
  NotCached,         // HF_HUB_OFFLINE=1 and the cache lacks what was asked for
  NoSpace,           // ENOSPC while writing a download
  Connection,        // no connection, a timeout, a connection cut mid-file
  Checksum,          // the bytes do not have the size or SHA-256 the Hub announced
  BadResponse,       // the server answered something the Hub protocol does not allow
  Http,              // any other HTTP status
};

class HubError : public Error {
 public:
  HubError(HubFailure failure, std::string where, std::string what, std::string hint = {});
  HubFailure failure() const { return failure_; }

 private:
  HubFailure failure_;
};

}  // namespace tp::hub

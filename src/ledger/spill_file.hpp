#pragma once
// The ledger's spill file: ledger rows that could not be written to the store
// (database unreachable), kept on local disk as JSON lines until a later
// flush replays them.
//
// Durability: every append is fsync'd (and the directory too when the file is
// created), so a spilled row survives kill -9 and power loss. A crash in the
// middle of an append can leave a torn last line; reading skips lines that do
// not parse (counted in `read_result::unreadable_lines`) and the next append
// starts on a fresh line, so a torn line never corrupts its neighbours.
//
// Several processes may share one spill path (two instances on one host):
// every operation holds an exclusive flock on "<path>.lock", a file that is
// never renamed, so appends, replays and rewrites never interleave.
//
// Segments: an outage of hours spills millions of rows, more than a replay
// should hold in memory at once. Once the file at `path` reaches
// `segment_bytes` an append seals it: it is renamed "<path>.seg-NNNNNNNNNN"
// (numbered in order) and the next append starts a new file. A replay takes
// one piece, the oldest sealed segment or else the open file, so it holds at
// most about `segment_bytes` of rows, and rows are replayed oldest first.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace gatewayz::ledger {

// One row as one line of JSON (no trailing newline), and back.
std::string encode_row(const store::ledger_row& row);
// Returns false (leaving `row` unspecified) when `line` is not a complete row.
bool decode_row(std::string_view line, store::ledger_row& row);

class spill_file {
 public:
  // `segment_bytes` 0: the file is never sealed (one piece, for files that
  // are only appended to, such as rejected rows).
  static constexpr std::size_t default_segment_bytes = 16 * 1024 * 1024;  // ~60k rows
  explicit spill_file(std::string path, std::size_t segment_bytes = default_segment_bytes);

  const std::string& path() const { return path_; }

  // Appends the rows and fsyncs. Throws std::system_error on I/O failure
  // (disk full, permissions): the caller decides what losing them means.
  void append(std::span<const store::ledger_row> rows) const;

  // Under the file lock: reads the rows of one piece (the oldest sealed
  // segment, else the open file), lets `replay` consume them, and then keeps
  // only the rows `replay` hands back (rewritten atomically via a temporary
  // file and rename, or the piece removed when none remain). `replay`
  // receives the piece's rows and returns the ones still unwritten (a subset
  // of what it received). Call again for the next piece (see has_data()).
  // Returns the number of unreadable (torn) lines that were discarded.
  // Throws std::system_error on I/O failure, leaving the piece as it was.
  template <typename Replay>
  std::size_t replay(Replay&& replay_rows) const {
    lock_guard lock{*this};
    const std::string piece = oldest_piece();
    std::size_t unreadable = 0;
    std::vector<store::ledger_row> rows = read_all(piece, unreadable);
    if (rows.empty() && unreadable == 0) {
      if (piece != path_) rewrite(piece, rows);  // an empty sealed segment: remove it
      return 0;
    }
    const std::size_t read = rows.size();
    std::vector<store::ledger_row> remaining = replay_rows(std::move(rows));
    // Nothing consumed and nothing torn: the piece already says exactly this.
    if (remaining.size() < read || unreadable > 0) rewrite(piece, remaining);
    return unreadable;
  }

  // True when a sealed segment exists or the open file holds at least one byte.
  bool has_data() const;
  // The sealed segments, oldest first (for tests and operators).
  std::vector<std::string> sealed_segments() const;

 private:
  // flock(LOCK_EX) on "<path>.lock" for the lifetime of the guard.
  class lock_guard {
   public:
    explicit lock_guard(const spill_file& file);
    ~lock_guard();
    lock_guard(const lock_guard&) = delete;
    lock_guard& operator=(const lock_guard&) = delete;

   private:
    int fd_ = -1;
  };

  struct segment {
    std::uint64_t number;
    std::string path;
  };
  // The sealed segments, by number.
  std::vector<segment> list_segments() const;
  // The piece a replay takes: the oldest sealed segment, else path_.
  std::string oldest_piece() const;
  std::vector<store::ledger_row> read_all(const std::string& piece, std::size_t& unreadable) const;
  void rewrite(const std::string& piece, const std::vector<store::ledger_row>& rows) const;

  std::string path_;
  std::size_t segment_bytes_;
};

}  // namespace gatewayz::ledger

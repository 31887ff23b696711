#include "ledger/spill_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <system_error>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace gatewayz::ledger {

namespace json = boost::json;

namespace {

[[noreturn]] void throw_errno(const char* what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(), std::string(what) + " " + path);
}

// Closes a descriptor on scope exit.
struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void fsync_or_throw(int fd, const std::string& path) {
  if (::fsync(fd) != 0) throw_errno("cannot fsync", path);
}

// A new or renamed directory entry is durable only once the directory is synced.
void fsync_directory_of(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory of", path);
  fd_closer closer{fd};
  fsync_or_throw(fd, path);
}

std::string encode_lines(std::span<const store::ledger_row> rows) {
  std::string out;
  for (const auto& row : rows) {
    out += encode_row(row);
    out += '\n';
  }
  return out;
}

template <typename T>
bool read_int(const json::object& obj, std::string_view name, T& out) {
  const auto* v = obj.if_contains(name);
  if (v == nullptr) return false;
  if (const auto* i = v->if_int64()) {
    out = static_cast<T>(*i);
    return true;
  }
  if (const auto* u = v->if_uint64()) {
    out = static_cast<T>(*u);
    return true;
  }
  return false;
}

bool read_double(const json::object& obj, std::string_view name, double& out) {
  const auto* v = obj.if_contains(name);
  if (v == nullptr || !v->is_number()) return false;
  out = v->to_number<double>();
  return true;
}

bool read_string(const json::object& obj, std::string_view name, std::string& out) {
  const auto* v = obj.if_contains(name);
  if (v == nullptr || !v->is_string()) return false;
  out = std::string(v->get_string());
  return true;
}

}  // namespace

std::string encode_row(const store::ledger_row& row) {
  json::object obj;
  obj["request_id"] = row.request_id;
  obj["unix_ms"] = row.unix_ms;
  if (row.customer_id) obj["customer_id"] = *row.customer_id;
  if (row.key_id) obj["key_id"] = *row.key_id;
  obj["model"] = row.model;
  obj["provider"] = row.provider;
  obj["attempts"] = row.attempts;
  obj["status"] = row.status;
  obj["http_status"] = row.http_status;
  obj["input_tokens"] = row.input_tokens;
  obj["output_tokens"] = row.output_tokens;
  obj["cost"] = row.cost;
  obj["latency_ms"] = row.latency_ms;
  if (row.ttft_ms) obj["ttft_ms"] = *row.ttft_ms;
  obj["streamed"] = row.streamed;
  return json::serialize(obj);
}

bool decode_row(std::string_view line, store::ledger_row& row) {
  json::error_code ec;
  const json::value parsed = json::parse(line, ec);
  if (ec || !parsed.is_object()) return false;
  const auto& obj = parsed.get_object();
  row = store::ledger_row{};
  if (!read_string(obj, "request_id", row.request_id) || row.request_id.empty()) return false;
  if (!read_int(obj, "unix_ms", row.unix_ms)) return false;
  if (obj.contains("customer_id")) {
    std::int64_t id = 0;
    if (!read_int(obj, "customer_id", id)) return false;
    row.customer_id = id;
  }
  if (obj.contains("key_id")) {
    std::int64_t id = 0;
    if (!read_int(obj, "key_id", id)) return false;
    row.key_id = id;
  }
  if (!read_string(obj, "model", row.model) || !read_string(obj, "provider", row.provider) ||
      !read_int(obj, "attempts", row.attempts) || !read_string(obj, "status", row.status) ||
      !read_int(obj, "http_status", row.http_status) || !read_int(obj, "input_tokens", row.input_tokens) ||
      !read_int(obj, "output_tokens", row.output_tokens) || !read_int(obj, "cost", row.cost) ||
      !read_double(obj, "latency_ms", row.latency_ms)) {
    return false;
  }
  if (obj.contains("ttft_ms")) {
    double ttft = 0;
    if (!read_double(obj, "ttft_ms", ttft)) return false;
    row.ttft_ms = ttft;
  }
  const auto* streamed = obj.if_contains("streamed");
  if (streamed == nullptr || !streamed->is_bool()) return false;
  row.streamed = streamed->get_bool();
  return true;
}

namespace {

constexpr std::string_view segment_marker = ".seg-";
constexpr std::size_t segment_digits = 10;

// The segment number in `name` when it is "<base>.seg-<10 digits>".
std::optional<std::uint64_t> segment_number(std::string_view name, std::string_view base) {
  if (name.size() != base.size() + segment_marker.size() + segment_digits) return std::nullopt;
  if (name.substr(0, base.size()) != base) return std::nullopt;
  if (name.substr(base.size(), segment_marker.size()) != segment_marker) return std::nullopt;
  std::uint64_t number = 0;
  for (const char c : name.substr(base.size() + segment_marker.size())) {
    if (c < '0' || c > '9') return std::nullopt;
    number = number * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return number;
}

}  // namespace

spill_file::spill_file(std::string path, std::size_t segment_bytes)
    : path_(std::move(path)), segment_bytes_(segment_bytes) {}

std::vector<spill_file::segment> spill_file::list_segments() const {
  const std::filesystem::path file(path_);
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  const std::string base = file.filename().string();
  std::vector<segment> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (const auto number = segment_number(entry.path().filename().string(), base)) {
      found.push_back({*number, entry.path().string()});
    }
  }
  if (ec) throw std::system_error(ec, "cannot list the directory of " + path_);
  std::sort(found.begin(), found.end(), [](const segment& a, const segment& b) { return a.number < b.number; });
  return found;
}

std::vector<std::string> spill_file::sealed_segments() const {
  std::vector<std::string> paths;
  for (auto& s : list_segments()) paths.push_back(std::move(s.path));
  return paths;
}

std::string spill_file::oldest_piece() const {
  auto segments = list_segments();
  return segments.empty() ? path_ : std::move(segments.front().path);
}

spill_file::lock_guard::lock_guard(const spill_file& file) {
  const std::string lock_path = file.path_ + ".lock";
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw_errno("cannot open", lock_path);
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd_);
    throw std::system_error(err, std::generic_category(), "cannot lock " + lock_path);
  }
}

spill_file::lock_guard::~lock_guard() {
  // Closing the descriptor releases the flock.
  ::close(fd_);
}

bool spill_file::has_data() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_size > 0) return true;
  return !list_segments().empty();
}

void spill_file::append(std::span<const store::ledger_row> rows) const {
  if (rows.empty()) return;
  lock_guard lock{*this};
  const bool existed = std::filesystem::exists(path_);
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("cannot open", path_);
  fd_closer closer{fd};

  std::string data;
  // A crash mid-append may have left a torn last line without its newline:
  // start on a fresh line so the torn fragment stays one unreadable line.
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("cannot stat", path_);
  if (st.st_size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) != 1) throw_errno("cannot read", path_);
    if (last != '\n') data += '\n';
  }
  data += encode_lines(rows);
  write_all(fd, data, path_);
  fsync_or_throw(fd, path_);
  if (!existed) fsync_directory_of(path_);
  if (segment_bytes_ > 0 && static_cast<std::size_t>(st.st_size) + data.size() >= segment_bytes_) {
    // Sealed under the next number; the next append starts a new file.
    const auto segments = list_segments();
    const std::uint64_t next = segments.empty() ? 1 : segments.back().number + 1;
    const std::string sealed = fmt::format("{}{}{:0{}}", path_, segment_marker, next, segment_digits);
    if (::rename(path_.c_str(), sealed.c_str()) != 0) throw_errno("cannot seal", path_);
    fsync_directory_of(path_);
  }
}

std::vector<store::ledger_row> spill_file::read_all(const std::string& piece, std::size_t& unreadable) const {
  std::vector<store::ledger_row> rows;
  const int fd = ::open(piece.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return rows;
    throw_errno("cannot open", piece);
  }
  fd_closer closer{fd};
  std::string content;
  char buffer[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", piece);
    }
    if (n == 0) break;
    content.append(buffer, static_cast<std::size_t>(n));
  }
  std::string_view rest = content;
  while (!rest.empty()) {
    const auto newline = rest.find('\n');
    const std::string_view line = rest.substr(0, newline);
    rest = newline == std::string_view::npos ? std::string_view{} : rest.substr(newline + 1);
    if (line.empty()) continue;
    store::ledger_row row;
    if (decode_row(line, row)) {
      rows.push_back(std::move(row));
    } else {
      ++unreadable;
    }
  }
  return rows;
}

void spill_file::rewrite(const std::string& piece, const std::vector<store::ledger_row>& rows) const {
  if (rows.empty()) {
    if (::unlink(piece.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", piece);
    fsync_directory_of(piece);
    return;
  }
  // Write the survivors beside the file and rename over it: a crash leaves
  // either the old file or the new one, never a half-written mix.
  const std::string tmp = path_ + ".tmp";
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw_errno("cannot open", tmp);
    fd_closer closer{fd};
    write_all(fd, encode_lines(rows), tmp);
    fsync_or_throw(fd, tmp);
  }
  if (::rename(tmp.c_str(), piece.c_str()) != 0) throw_errno("cannot rename onto", piece);
  fsync_directory_of(piece);
}

}  // namespace gatewayz::ledger

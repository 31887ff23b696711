// The cache section.
#include <charconv>
#include <cmath>
#include <string>

#include "config/loader.hpp"

namespace gatewayz::config::detail {

void loader::load_cache(const YAML::Node& node, const std::string& path, cache_config& out) {
  each_entry(node, path, [&](const std::string& key, const YAML::Node& value, const std::string& at) {
    if (key == "mode") {
      std::string mode;
      if (!read_string(value, at, mode)) return true;
      if (mode != "off" && mode != "memory" && mode != "redis") {
        fail(at, fmt::format("must be one of off, memory, redis (got {})", shown(mode)));
        return true;
      }
      out.mode = std::move(mode);
    } else if (key == "ttl_s") {
      read_seconds(value, at, out.ttl_s, false);
    } else if (key == "max_bytes") {
      read_integer<std::size_t>(value, at, out.max_bytes, 4096);
    } else if (key == "local_max_bytes") {
      read_integer<std::size_t>(value, at, out.local_max_bytes, 0);
    } else if (key == "local_ttl_s") {
      read_seconds(value, at, out.local_ttl_s, false);
    } else if (key == "max_entry_bytes") {
      read_integer<std::size_t>(value, at, out.max_entry_bytes, 256);
    } else if (key == "models") {
      std::vector<std::string> models;
      each_item(value, at, [&](const YAML::Node& item, const std::string& item_at) {
        std::string model;
        if (read_nonempty(item, item_at, model)) models.push_back(std::move(model));
      });
      out.models = std::move(models);
    } else if (key == "hit_cost_fraction") {
      const auto text = scalar(value, at);
      if (!text) return true;
      double parsed = 0;
      const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), parsed);
      if (text->empty() || ec != std::errc{} || end != text->data() + text->size() || !std::isfinite(parsed) ||
          parsed < 0 || parsed > 1) {
        fail(at, fmt::format("must be a number in [0, 1] (got {})", shown(*text)));
        return true;
      }
      out.hit_cost_fraction = parsed;
    } else {
      return false;
    }
    return true;
  });
  if (out.max_entry_bytes > out.max_bytes) {
    fail(child_path(path, "max_entry_bytes"),
         fmt::format("must be at most cache.max_bytes ({}) (got {})", out.max_bytes, out.max_entry_bytes));
  }
}

}  // namespace gatewayz::config::detail

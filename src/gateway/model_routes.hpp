#pragma once
// Which providers serve a model: built once from the config, immutable, shared
// by every shard. Also the body of GET /v1/models (built once).

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace gatewayz::gateway {

// One provider able to serve a model.
struct route_target {
  std::size_t provider_index;         // into gateway_config::providers
  const config::model_config* model;  // that provider's entry for the model
  std::size_t target_index;           // dense id of this (provider, model) pair
  std::size_t model_slot;             // index of `model` in its provider's model list
};

class model_routes {
 public:
  // `providers` must outlive this object.
  explicit model_routes(const std::vector<config::provider_config>& providers);

  // Providers serving `model`, in config order; empty if none.
  const std::vector<route_target>& find(std::string_view model) const;
  // Number of (provider, model) pairs: target_index values are below it.
  std::size_t target_count() const { return target_count_; }
  // {"object":"list","data":[...]}: one entry per model id, owned by the
  // first provider listing it.
  const std::string& models_body() const { return models_body_; }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<route_target>, string_hash, std::equal_to<>> routes_;
  std::vector<route_target> none_;
  std::size_t target_count_ = 0;
  std::string models_body_;
};

}  // namespace gatewayz::gateway

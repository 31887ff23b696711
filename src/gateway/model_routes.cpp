#include "gateway/model_routes.hpp"

#include <chrono>

#include <boost/json.hpp>

namespace gatewayz::gateway {

model_routes::model_routes(const std::vector<config::provider_config>& providers) {
  const auto created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  boost::json::array model_list;
  for (std::size_t i = 0; i < providers.size(); ++i) {
    const auto& provider = providers[i];
    for (const auto& model : provider.models) {
      auto& targets = routes_[model.id];
      if (targets.empty()) {
        model_list.push_back(boost::json::object{{"id", model.id},
                                                 {"object", "model"},
                                                 {"created", created},
                                                 {"owned_by", provider.name}});
      }
      targets.push_back(
          route_target{i, &model, target_count_++, static_cast<std::size_t>(&model - provider.models.data())});
    }
  }
  models_body_ = boost::json::serialize(boost::json::object{{"object", "list"}, {"data", std::move(model_list)}});
}

const std::vector<route_target>& model_routes::find(std::string_view model) const {
  const auto it = routes_.find(model);
  return it == routes_.end() ? none_ : it->second;
}

}  // namespace gatewayz::gateway

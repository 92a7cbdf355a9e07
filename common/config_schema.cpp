#include "common/config_schema.h"

#include <sstream>

namespace rl::common {

std::string Range::Describe() const {
  std::ostringstream out;
  if (std::isinf(max)) {
    out << "at least " << min;
  } else if (std::isinf(min)) {
    out << "at most " << max;
  } else {
    out << "between " << min << " and " << max;
  }
  return out.str();
}

std::string FormatConfigError(const std::string& origin, int line, const std::string& path,
                              const std::string& detail) {
  std::string out = origin;
  if (line > 0) out.append(":").append(std::to_string(line));
  for (const std::string* part : {&path, &detail}) {
    if (part->empty()) continue;
    if (!out.empty()) out.append(": ");
    out.append(*part);
  }
  return out;
}

ConfigError::ConfigError(std::string origin, int line, std::string path, std::string detail)
    : std::runtime_error(FormatConfigError(origin, line, path, detail)),
      origin_(std::move(origin)),
      line_(line),
      path_(std::move(path)),
      detail_(std::move(detail)) {}

void RangeChecker::Check(const char* key, double value, Range range) const {
  if (range.Contains(value)) return;
  std::ostringstream detail;
  detail << "value " << value << " out of range: expected " << range.Describe();
  throw ConfigError(origin_, 0, prefix_ + key, detail.str());
}

}  // namespace rl::common

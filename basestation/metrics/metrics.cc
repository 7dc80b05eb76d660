#include "basestation/metrics/metrics.h"

#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace edgelink::metrics {
namespace internal {
namespace {

bool IsNameChar(char c, bool first, bool allow_colon) {
  if (absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_') return true;
  if (allow_colon && c == ':') return true;
  return !first && absl::ascii_isdigit(static_cast<unsigned char>(c));
}

bool IsValidName(absl::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

}  // namespace

bool IsValidMetricName(absl::string_view name) { return IsValidName(name, /*allow_colon=*/true); }

bool IsValidLabelName(absl::string_view name) {
  return IsValidName(name, /*allow_colon=*/false) && !absl::StartsWith(name, "__");
}

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code_point;
    uint32_t min_code_point;  // Anything below is an overlong encoding.
    if ((lead & 0xE0) == 0xC0) {
      length = 2, code_point = lead & 0x1F, min_code_point = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code_point = lead & 0x0F, min_code_point = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code_point = lead & 0x07, min_code_point = 0x10000;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const uint8_t next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if (code_point < min_code_point || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace internal

CounterFamily::CounterFamily(std::string label_name, const std::vector<std::string>& label_values)
    : label_name_(std::move(label_name)) {
  for (const std::string& value : label_values) {
    counters_.emplace(std::piecewise_construct, std::forward_as_tuple(value), std::tuple<>());
  }
}

Counter& CounterFamily::Get(absl::string_view label_value) {
  Counter* counter = Find(label_value);
  if (counter == nullptr) {
    // A label value missing from the registration is a bug in the caller, not an input error.
    std::fprintf(stderr, "edgelink::metrics: label %s=\"%s\" was not declared\n",
                 label_name_.c_str(), internal::EscapeLabelValue(label_value).c_str());
    std::abort();
  }
  return *counter;
}

Counter* CounterFamily::Find(absl::string_view label_value) {
  auto it = counters_.find(label_value);
  return it == counters_.end() ? nullptr : &it->second;
}

struct Registry::Entry {
  std::string escaped_help;
  std::variant<std::unique_ptr<Counter>, std::unique_ptr<Gauge>, std::unique_ptr<CounterFamily>,
               CallbackGaugeFn>
      metric;
};

namespace {

absl::Status CheckNameAndHelp(absl::string_view name, absl::string_view help) {
  if (!internal::IsValidMetricName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name \"", internal::EscapeLabelValue(name),
                     "\" does not match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  if (help.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("metric ", name, " has no help text"));
  }
  if (!internal::IsValidUtf8(help)) {
    return absl::InvalidArgumentError(absl::StrCat("help text of ", name, " is not UTF-8"));
  }
  return absl::OkStatus();
}

}  // namespace

Registry::Registry() = default;
Registry::~Registry() = default;

absl::Status Registry::Register(absl::string_view name, std::unique_ptr<Entry> entry) {
  absl::MutexLock lock(&mu_);
  if (entries_.find(name) != entries_.end()) {
    return absl::AlreadyExistsError(absl::StrCat("metric ", name, " is already registered"));
  }
  entries_.emplace(std::string(name), std::move(entry));
  return absl::OkStatus();
}

absl::StatusOr<Counter*> Registry::AddCounter(absl::string_view name, absl::string_view help) {
  if (absl::Status status = CheckNameAndHelp(name, help); !status.ok()) return status;
  auto counter = std::make_unique<Counter>();
  Counter* result = counter.get();
  auto entry = std::make_unique<Entry>(Entry{internal::EscapeHelp(help), std::move(counter)});
  if (absl::Status status = Register(name, std::move(entry)); !status.ok()) return status;
  return result;
}

absl::StatusOr<Gauge*> Registry::AddGauge(absl::string_view name, absl::string_view help) {
  if (absl::Status status = CheckNameAndHelp(name, help); !status.ok()) return status;
  auto gauge = std::make_unique<Gauge>();
  Gauge* result = gauge.get();
  auto entry = std::make_unique<Entry>(Entry{internal::EscapeHelp(help), std::move(gauge)});
  if (absl::Status status = Register(name, std::move(entry)); !status.ok()) return status;
  return result;
}

absl::StatusOr<CounterFamily*> Registry::AddCounterFamily(
    absl::string_view name, absl::string_view help, absl::string_view label_name,
    const std::vector<std::string>& label_values) {
  if (absl::Status status = CheckNameAndHelp(name, help); !status.ok()) return status;
  if (!internal::IsValidLabelName(label_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("label name \"", internal::EscapeLabelValue(label_name), "\" of ", name,
                     " does not match [a-zA-Z_][a-zA-Z0-9_]* or starts with __"));
  }
  if (label_values.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("metric ", name, " has no label values"));
  }
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& value : label_values) {
    if (!internal::IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("a value of label ", label_name, " of ", name, " is not UTF-8"));
    }
    if (!seen.insert(value).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("label value ", label_name, "=\"", internal::EscapeLabelValue(value),
                       "\" of ", name, " is repeated"));
    }
  }
  std::unique_ptr<CounterFamily> family(new CounterFamily(std::string(label_name), label_values));
  CounterFamily* result = family.get();
  auto entry = std::make_unique<Entry>(Entry{internal::EscapeHelp(help), std::move(family)});
  if (absl::Status status = Register(name, std::move(entry)); !status.ok()) return status;
  return result;
}

absl::Status Registry::AddCallbackGauge(absl::string_view name, absl::string_view help,
                                        CallbackGaugeFn fn) {
  if (absl::Status status = CheckNameAndHelp(name, help); !status.ok()) return status;
  if (fn == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("callback gauge ", name, " has no callback"));
  }
  return Register(name, std::make_unique<Entry>(Entry{internal::EscapeHelp(help), std::move(fn)}));
}

std::string Registry::RenderPrometheusText() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, entry] : entries_) {
    const bool is_counter = std::holds_alternative<std::unique_ptr<Counter>>(entry->metric) ||
                            std::holds_alternative<std::unique_ptr<CounterFamily>>(entry->metric);
    absl::StrAppend(&out, "# HELP ", name, " ", entry->escaped_help, "\n# TYPE ", name,
                    is_counter ? " counter\n" : " gauge\n");
    if (const auto* counter = std::get_if<std::unique_ptr<Counter>>(&entry->metric)) {
      absl::StrAppend(&out, name, " ", (*counter)->value(), "\n");
    } else if (const auto* gauge = std::get_if<std::unique_ptr<Gauge>>(&entry->metric)) {
      absl::StrAppend(&out, name, " ", (*gauge)->value(), "\n");
    } else if (const auto* family = std::get_if<std::unique_ptr<CounterFamily>>(&entry->metric)) {
      for (const auto& [label_value, counter] : (*family)->counters_) {
        absl::StrAppend(&out, name, "{", (*family)->label_name(), "=\"",
                        internal::EscapeLabelValue(label_value), "\"} ", counter.value(), "\n");
      }
    } else {
      absl::StrAppend(&out, name, " ", std::get<CallbackGaugeFn>(entry->metric)(), "\n");
    }
  }
  return out;
}

}  // namespace edgelink::metrics

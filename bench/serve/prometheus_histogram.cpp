#include "bench/serve/prometheus_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>

namespace pagedserve::bench {
namespace {

bool names_family(std::string_view name, std::string_view suffix) {
  if (name == suffix) return true;
  if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return false;
  const char before = name[name.size() - suffix.size() - 1];
  return before == ':' || before == '_';
}

double parse_number(std::string_view text) {
  const std::string s(text);
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return end == s.c_str() ? std::nan("") : v;
}

// The value of label `key` inside "{a="x",le="0.5"}", or empty.
std::string_view label_value(std::string_view labels, std::string_view key) {
  const std::string needle = std::string(key) + "=\"";
  for (size_t at = labels.find(needle); at != std::string_view::npos; at = labels.find(needle, at + 1)) {
    if (at != 0 && labels[at - 1] != '{' && labels[at - 1] != ',' && labels[at - 1] != ' ') continue;
    const size_t start = at + needle.size();
    const size_t end = labels.find('"', start);
    if (end == std::string_view::npos) return {};
    return labels.substr(start, end - start);
  }
  return {};
}

}  // namespace

Histogram find_histogram(std::string_view exposition, std::string_view suffix) {
  Histogram h;
  std::map<double, double> by_bound;
  size_t start = 0;
  while (start < exposition.size()) {
    size_t end = exposition.find('\n', start);
    if (end == std::string_view::npos) end = exposition.size();
    std::string_view line = exposition.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line.front() == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) continue;
    const std::string_view series = line.substr(0, name_end);
    constexpr std::string_view bucket = "_bucket";
    if (series.size() <= bucket.size() || series.substr(series.size() - bucket.size()) != bucket) continue;
    const std::string_view family = series.substr(0, series.size() - bucket.size());
    if (!names_family(family, suffix)) continue;
    if (h.name.empty()) h.name = std::string(family);
    if (family != h.name) continue;
    // Labels end at the last '}' (label values may hold spaces); the value follows it.
    const size_t close = line[name_end] == '{' ? line.rfind('}') : name_end;
    if (close == std::string_view::npos) continue;
    const std::string_view labels = line.substr(name_end, close - name_end + 1);
    std::string_view rest = line.substr(close + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const std::string_view value = rest.substr(0, rest.find(' '));  // drop a timestamp
    const double le = parse_number(label_value(labels, "le"));
    const double count = parse_number(value);
    if (std::isnan(le) || std::isnan(count)) continue;
    by_bound[le] += count;
  }
  for (const auto& [le, count] : by_bound) h.buckets.push_back({le, count});
  return h;
}

Histogram histogram_delta(const Histogram& before, const Histogram& after) {
  Histogram d = after;
  for (HistogramBucket& b : d.buckets) {
    for (const HistogramBucket& old : before.buckets)
      if (old.upper_bound == b.upper_bound) b.count -= old.count;
  }
  return d;
}

Histogram histogram_of(const std::vector<double>& values, const Histogram& like) {
  Histogram h{like.name, like.buckets};
  for (HistogramBucket& b : h.buckets) {
    b.count = 0;
    for (double v : values)
      if (v <= b.upper_bound) ++b.count;
  }
  return h;
}

double histogram_count(const Histogram& h) { return h.buckets.empty() ? 0 : h.buckets.back().count; }

double histogram_quantile(double q, const Histogram& h) {
  if (h.buckets.size() < 2 || !std::isinf(h.buckets.back().upper_bound)) return std::nan("");
  const double total = h.buckets.back().count;
  if (!(total > 0)) return std::nan("");
  const double rank = std::clamp(q, 0.0, 1.0) * total;
  size_t i = 0;
  while (i < h.buckets.size() && h.buckets[i].count < rank) ++i;
  if (i + 1 == h.buckets.size()) return h.buckets[h.buckets.size() - 2].upper_bound;
  const double lower = i == 0 ? 0.0 : h.buckets[i - 1].upper_bound;
  const double below = i == 0 ? 0.0 : h.buckets[i - 1].count;
  const double upper = h.buckets[i].upper_bound;
  const double in_bucket = h.buckets[i].count - below;
  if (i == 0 && upper <= 0) return upper;
  if (!(in_bucket > 0)) return lower;  // only for q = 0 over an empty first bucket
  return lower + (upper - lower) * (rank - below) / in_bucket;
}

}  // namespace pagedserve::bench

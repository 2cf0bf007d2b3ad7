// The terminal sparkline: scaling, bucket means when values outnumber characters, non-finite values.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/report/sparkline.hpp"

namespace vkm::report {
namespace {

std::string line(const std::vector<double>& v, int width) { return sparkline(v, width); }

TEST(Sparkline, ScalesBetweenMinAndMax) {
  EXPECT_EQ(line({0, 1, 2, 3, 4, 5, 6, 7}, 20), "▁▂▃▄▅▆▇█");
  EXPECT_EQ(line({7, 0}, 8), "█▁");
  EXPECT_EQ(line({5, 5, 5}, 8), "▄▄▄");  // flat: the middle
}

TEST(Sparkline, MoreValuesThanWidthAreAveraged) {
  // Four characters of two values each: means 0.5, 2.5, 4.5, 6.5.
  EXPECT_EQ(line({0, 1, 2, 3, 4, 5, 6, 7}, 4), "▁▃▆█");
  std::vector<double> many(1000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = 1000.0 - double(i);
  const std::string s = line(many, 10);
  EXPECT_EQ(s.size(), 10u * 3);  // every bar is three bytes of UTF-8
  EXPECT_EQ(s.substr(0, 3), "█");
  EXPECT_EQ(s.substr(27, 3), "▁");
}

TEST(Sparkline, NonFiniteValuesAndEdges) {
  EXPECT_EQ(line({1, NAN, 3}, 8), "▁ █");
  EXPECT_EQ(line({1, INFINITY, 3, -INFINITY}, 8), "▁ █ ");
  EXPECT_EQ(line({NAN, 2, NAN, 4}, 2), "▁█");  // each character's share has one finite value
  EXPECT_EQ(line({NAN, NAN}, 4), "  ");
  EXPECT_EQ(line({}, 8), "");
  EXPECT_EQ(line({1, 2}, 0), "");
}

}  // namespace
}  // namespace vkm::report

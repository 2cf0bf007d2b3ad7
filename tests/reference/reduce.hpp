#pragma once
#include "tests/reference/rounding.hpp"

namespace vkm::ref {

double sum(const Vec& x);
double sum_squares(const Vec& x);

}  // namespace vkm::ref

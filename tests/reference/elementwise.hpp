#pragma once
#include "tests/reference/rounding.hpp"

namespace vkm::ref {

Vec add(const Vec& a, const Vec& b);  // a + b, elementwise
Vec scale(const Vec& x, double alpha);

}  // namespace vkm::ref

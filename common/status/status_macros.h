// RETURN_IF_ERROR and ASSIGN_OR_RETURN: early returns for absl::Status / absl::StatusOr.
// Debian's Abseil 20220623 ships no status_macros.h, so Edgelink keeps this small pair.
#ifndef EDGELINK_COMMON_STATUS_STATUS_MACROS_H_
#define EDGELINK_COMMON_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

// RETURN_IF_ERROR(expr) evaluates `expr` (an absl::Status) once and returns it from the enclosing
// function if it is not OK.
#define RETURN_IF_ERROR(expr)                                      \
  do {                                                             \
    ::absl::Status edgelink_status_ = (expr);                      \
    if (ABSL_PREDICT_FALSE(!edgelink_status_.ok())) {              \
      return edgelink_status_;                                     \
    }                                                              \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr) evaluates `expr` (an absl::StatusOr<T>) once; on error returns its
// status from the enclosing function, otherwise moves the value into `lhs`, which may be a
// declaration (`ASSIGN_OR_RETURN(auto x, F())`) or an existing variable.
#define ASSIGN_OR_RETURN(lhs, expr)                                                      \
  EDGELINK_ASSIGN_OR_RETURN_IMPL_(EDGELINK_STATUS_CONCAT_(edgelink_statusor_, __LINE__), \
                                  lhs, expr)

#define EDGELINK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {                  \
    return std::move(statusor).status();                     \
  }                                                          \
  lhs = std::move(statusor).value()

#define EDGELINK_STATUS_CONCAT_(a, b) EDGELINK_STATUS_CONCAT_INNER_(a, b)
#define EDGELINK_STATUS_CONCAT_INNER_(a, b) a##b

#endif  // EDGELINK_COMMON_STATUS_STATUS_MACROS_H_

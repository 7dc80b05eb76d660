"""Builds one C++ source set twice: against BoringSSL (device side) and OpenSSL (service side).

The two libraries export the same symbols, so a binary must link exactly one of them. Each macro
here makes `<name>_boringssl` and `<name>_openssl`; `backend_deps` names other dual-backend targets
by their base label and get the matching suffix, so a variant never mixes backends.
"""

BACKENDS = {
    "boringssl": "//third_party:boringssl",
    "openssl": "//third_party:openssl",
}

def _variant_deps(backend, deps, backend_deps):
    return deps + [d + "_" + backend for d in backend_deps] + [BACKENDS[backend]]

def dual_backend_cc_library(name, backend_deps = [], deps = [], **kwargs):
    """A cc_library built once per crypto backend: <name>_boringssl and <name>_openssl."""
    for backend in BACKENDS:
        native.cc_library(
            name = name + "_" + backend,
            deps = _variant_deps(backend, deps, backend_deps),
            **kwargs
        )

def dual_backend_cc_test(name, backend_deps = [], deps = [], **kwargs):
    """A cc_test run against each crypto backend, plus a test_suite <name> covering both."""
    for backend in BACKENDS:
        native.cc_test(
            name = name + "_" + backend,
            deps = _variant_deps(backend, deps, backend_deps),
            **kwargs
        )
    native.test_suite(
        name = name,
        tests = [name + "_" + backend for backend in BACKENDS],
    )

def dual_backend_cc_binary(name, backend_deps = [], deps = [], **kwargs):
    """A cc_binary built once per crypto backend: <name>_boringssl and <name>_openssl."""
    for backend in BACKENDS:
        native.cc_binary(
            name = name + "_" + backend,
            deps = _variant_deps(backend, deps, backend_deps),
            **kwargs
        )

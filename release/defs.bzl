"""Rules that turn cc_library graphs into what a release ships: one static archive, its headers.

Bazel builds one archive per cc_library. An SDK user wants one library and an include tree, so:

  cc_merged_archive  every static archive of this repository's libraries under `deps` (their
                     transitive linker inputs, system libraries excluded: those are link flags
                     only), merged into one `lib<name>.a` with `ar -M`.
  cc_static_archives the same archives, unmerged (one per library), e.g. to measure each.
  cc_public_headers  the headers those libraries export (transitive), this repository's only;
                     generated ones (proto/*.pb.h) included. DefaultInfo: the files; their path
                     inside the include tree is File.short_path.
  size_optimized     the same deps rebuilt -c opt -Os (a configuration transition), for the
                     device footprint benchmark.
"""

def _owned_by_us(label):
    return label.workspace_name == ""

def _excluded(label, exclude_packages):
    for prefix in exclude_packages:
        if label.package == prefix or label.package.startswith(prefix + "/"):
            return True
    return False

def _static_archives(deps, exclude_packages):
    archives = []
    seen = {}
    for dep in deps:
        for linker_input in dep[CcInfo].linking_context.linker_inputs.to_list():
            if not _owned_by_us(linker_input.owner):
                continue
            if _excluded(linker_input.owner, exclude_packages):
                continue
            for library in linker_input.libraries:
                archive = library.pic_static_library or library.static_library
                if archive and archive.path not in seen:
                    seen[archive.path] = True
                    archives.append(archive)
    return archives

def _cc_merged_archive_impl(ctx):
    archives = _static_archives(ctx.attr.deps, ctx.attr.exclude_packages)
    if not archives:
        fail("no static archives under deps")
    out = ctx.actions.declare_file("lib%s.a" % ctx.label.name)
    # GNU ar's MRI script: ADDLIB copies every member of an archive, so objects that share a file
    # name in different packages (rpc.o, ...) are all kept.
    script = ctx.actions.declare_file(ctx.label.name + ".mri")
    ctx.actions.write(
        script,
        "CREATE %s\n" % out.path +
        "".join(["ADDLIB %s\n" % a.path for a in archives]) +
        "SAVE\nEND\n",
    )
    ctx.actions.run_shell(
        inputs = archives + [script],
        outputs = [out],
        command = "ar -M < %s && ranlib %s" % (script.path, out.path),
        mnemonic = "MergeArchives",
        progress_message = "Merging %d archives into %s" % (len(archives), out.short_path),
    )
    return [DefaultInfo(files = depset([out]))]

cc_merged_archive = rule(
    implementation = _cc_merged_archive_impl,
    doc = "lib<name>.a: the static archives of this repository's libraries under deps, merged.",
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
        "exclude_packages": attr.string_list(
            doc = "Packages (and their subpackages) whose archives are left out.",
        ),
    },
)

def _cc_static_archives_impl(ctx):
    return [DefaultInfo(files = depset(_static_archives(ctx.attr.deps, ctx.attr.exclude_packages)))]

cc_static_archives = rule(
    implementation = _cc_static_archives_impl,
    doc = "The static archives of this repository's libraries under deps, one per library.",
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
        "exclude_packages": attr.string_list(
            doc = "Packages (and their subpackages) whose archives are left out.",
        ),
    },
)

def _cc_public_headers_impl(ctx):
    headers = []
    for dep in ctx.attr.deps:
        for header in dep[CcInfo].compilation_context.headers.to_list():
            if header.owner and not _owned_by_us(header.owner):
                continue
            if header.short_path.startswith("../"):
                continue
            headers.append(header)
    return [DefaultInfo(files = depset(headers))]

cc_public_headers = rule(
    implementation = _cc_public_headers_impl,
    doc = "The headers (transitive) of this repository's libraries under deps.",
    attrs = {"deps": attr.label_list(providers = [CcInfo])},
)

def _size_transition_impl(settings, attr):
    # What a device would ship: no sanitizer instrumentation even under --config=asan, so the
    # figure is the same in every test run.
    copts = [
        c
        for c in settings["//command_line_option:copt"]
        if not (c.startswith("-fsanitize") or c.startswith("-fno-sanitize") or
                c == "-fno-omit-frame-pointer")
    ]
    return {
        "//command_line_option:compilation_mode": "opt",
        # Appended last, so -Os wins over the -O2 that .bazelrc passes.
        "//command_line_option:copt": copts + ["-Os"],
    }

_size_transition = transition(
    implementation = _size_transition_impl,
    inputs = ["//command_line_option:copt"],
    outputs = [
        "//command_line_option:compilation_mode",
        "//command_line_option:copt",
    ],
)

def _size_optimized_impl(ctx):
    # Copied under <name>/ so they never meet the same files built in the target configuration
    # in one runfiles tree.
    outs = []
    for src in ctx.attr.srcs:
        for f in src[DefaultInfo].files.to_list():
            out = ctx.actions.declare_file(ctx.label.name + "/" + f.short_path)
            ctx.actions.run_shell(
                inputs = [f],
                outputs = [out],
                command = "cp '%s' '%s'" % (f.path, out.path),
                mnemonic = "CopySizeOptimized",
            )
            outs.append(out)
    return [DefaultInfo(files = depset(outs), runfiles = ctx.runfiles(files = outs))]

size_optimized = rule(
    implementation = _size_optimized_impl,
    doc = "The files of srcs (e.g. archives) built -c opt -Os, as <name>/<their path>.",
    attrs = {
        "srcs": attr.label_list(cfg = _size_transition),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)

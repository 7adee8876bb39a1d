"""Build libSSCardDriver.so: the national C interface, exported from Python by cffi embedding.

    python -m sbcard.national.build_native [OUTDIR]      # default: build/native
    python -m sbcard.national.build_native --header      # re-render the header's size block

Why cffi's embedding API (docs/architecture.md): it generates the C entry points from the
very prototypes of ``native/SSCardDriver.h``, starts the interpreter on the first call from
any thread and takes the GIL around each call, so the library is one header and one table
of Python functions — no hand-written CPython glue to keep right. The library links against
libpython; the interpreter finds sbcard and its dependencies through the paths written in at
build time (this checkout and its virtualenv), or ``SBCARD_PYTHONPATH`` at run time.
"""

from __future__ import annotations

import json
import os
import re
import site
import sys
import sysconfig
import textwrap
from pathlib import Path

from sbcard.national.cabi import MAX_OUTPUT, OUTPUT_SIZES

NATIVE = Path(__file__).resolve().parent / "native"
HEADER = NATIVE / "SSCardDriver.h"
PROTOTYPE = re.compile(r"^long\s+(\w+)\((.*)\);$")


def declarations() -> list[tuple[str, list[tuple[str, str]]]]:
    """(name, [(C type, parameter name)]) of every function in the header."""
    out = []
    for line in HEADER.read_text(encoding="utf-8").splitlines():
        m = PROTOTYPE.match(line.strip())
        if not m:
            continue
        params = []
        for p in m.group(2).split(","):
            p = p.strip()
            if not p:
                continue
            ctype, _, pname = p.rpartition(" ")
            params.append((ctype.strip() + ("*" if pname.startswith("*") else ""),
                           pname.lstrip("*")))
        out.append((m.group(1), params))
    return out


BEGIN = "/* BEGIN output sizes"
END = "/* END output sizes */"


def size_macros() -> list[str]:
    """The ``#define`` lines of the output sizes, from ``cabi.OUTPUT_SIZES`` (the one table)."""
    width = max(len(n) for n in OUTPUT_SIZES) + len("SSCARD_MAX_OUTPUT_") + 1
    lines = [f"#define {'SSCARD_MAX_OUTPUT':<{width}}{MAX_OUTPUT:>6}"
             "  /* the default: a function the spec gives no size */",
             f"#define {'SSCARD_MAX_OUTPUT_ANY':<{width}}"
             f"{max(s for s, _ in OUTPUT_SIZES.values()):>6}"
             "  /* the largest: a buffer this size fits every function */"]
    for name, (size, source) in OUTPUT_SIZES.items():
        lines.append(f"#define {'SSCARD_MAX_OUTPUT_' + name:<{width}}{size:>6}  /* {source} */")
    return lines


def header_text() -> str:
    """``SSCardDriver.h`` with its output-size block rendered from ``cabi.OUTPUT_SIZES``."""
    text = HEADER.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    comment, _, rest = rest.partition("*/\n")
    _, _, tail = rest.partition(END)
    return head + BEGIN + comment + "*/\n" + "\n".join(size_macros()) + "\n" + END + tail


def _paths() -> list[str]:
    """Where the embedded interpreter finds sbcard (this checkout) and its dependencies."""
    root = Path(__file__).resolve().parents[2]
    paths = [str(root), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths += [p for p in site.getsitepackages() if p not in paths]
    return list(dict.fromkeys(paths))


def _libpython() -> str:
    """The soname of the libpython this library links against (promoted to RTLD_GLOBAL)."""
    name = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    return str(name or f"libpython{sysconfig.get_python_version()}.so")


PY = "sbcard_py_"      # the cffi entry points the exported C functions call


def _proto(name: str, params: list[tuple[str, str]]) -> str:
    return f"long {name}({', '.join(f'{t} {p}' for t, p in params) or 'void'})"


def c_wrappers(decls: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """The exported national functions: keep this thread's Python state, then call Python.

    cffi gives a thread that calls in from C a fresh Python thread state per call and drops
    it afterwards; creating one costs more than the whole national function's own Python
    work on a fast card. Each thread's state is created once and kept (``sbcard_pin``), and
    released when the thread ends (a pthread key destructor).
    """
    out = []
    for name, params in decls:
        args = ", ".join(p for _t, p in params)
        out.append(f"{_proto(PY + name, params)};")
        out.append(f"{_proto(name, params)} {{\n"
                   f"    long rc = {PY}{name}({args});\n"
                   f"    sbcard_pin();\n"
                   f"    return rc;\n}}")
    return "\n".join(out) + "\n"


PIN_C = """
static pthread_key_t sbcard_tstate_key;
static pthread_once_t sbcard_key_once = PTHREAD_ONCE_INIT;

static void sbcard_unpin(void *tstate) {
    if (tstate != NULL && Py_IsInitialized()) {
        PyEval_RestoreThread((PyThreadState *)tstate);
        PyGILState_Release(PyGILState_UNLOCKED);   /* counter 1 -> 0: state freed */
    }
}

static void sbcard_make_key(void) { pthread_key_create(&sbcard_tstate_key, sbcard_unpin); }

/* After a call from C: give this thread a Python thread state that outlives the call. */
static void sbcard_pin(void) {
    pthread_once(&sbcard_key_once, sbcard_make_key);
    if (pthread_getspecific(sbcard_tstate_key) != NULL || !Py_IsInitialized()) return;
    if (PyGILState_GetThisThreadState() != NULL) return;   /* a Python thread: it has one */
    PyGILState_Ensure();                                 /* counter 0 -> 1, GIL taken */
    pthread_setspecific(sbcard_tstate_key, PyEval_SaveThread());   /* GIL released */
}
"""


def c_prelude() -> str:
    """C run when the library is loaded, before the interpreter starts.

    1. Hosts dlopen us with RTLD_LOCAL, so libpython's symbols would stay hidden from the
       extension modules Python loads later (``_cffi_backend``: "undefined symbol
       PyExc_SystemError"): load libpython again with RTLD_GLOBAL | RTLD_NOLOAD.
    2. cffi imports ``_cffi_backend`` before our init code can extend ``sys.path``; when this
       library starts the interpreter, PYTHONPATH names the build's paths for that start (the
       init code removes them from the environment again, so child processes never see them).
    """
    paths = os.pathsep.join(_paths())
    return textwrap.dedent(f"""\
        #include "SSCardDriver.h"
        #include <dlfcn.h>
        #include <stdlib.h>
        #include <string.h>
        #include <stdio.h>
        #include <pthread.h>
        #include <Python.h>

        static const char sbcard_paths[] = {json.dumps(paths)};

        __attribute__((constructor)) static void sbcard_preload(void) {{
            dlopen({json.dumps(_libpython())}, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
            if (Py_IsInitialized()) return;
            const char *old = getenv("PYTHONPATH");
            size_t n = strlen(sbcard_paths) + (old ? strlen(old) : 0) + 2;
            char *value = malloc(n);
            if (!value) return;
            if (old && *old) snprintf(value, n, "%s:%s", sbcard_paths, old);
            else snprintf(value, n, "%s", sbcard_paths);
            setenv("PYTHONPATH", value, 1);
            setenv("SBCARD_EMBED_PATHS", sbcard_paths, 1);
            free(value);
        }}
        """)


def c_source(decls: list[tuple[str, list[tuple[str, str]]]]) -> str:
    return c_prelude() + PIN_C + c_wrappers(decls)


def init_code(decls: list[tuple[str, list[tuple[str, str]]]]) -> str:
    lines = [
        "import os, sys",
        f"for _p in reversed({_paths()!r}):",
        "    if _p not in sys.path: sys.path.insert(0, _p)",
        "for _p in reversed(os.environ.get('SBCARD_PYTHONPATH', '').split(os.pathsep)):",
        "    if _p and _p not in sys.path: sys.path.insert(0, _p)",
        "_baked = os.environ.pop('SBCARD_EMBED_PATHS', None)",
        "if _baked is not None:",
        "    _rest = os.environ.get('PYTHONPATH', '')[len(_baked):].lstrip(os.pathsep)",
        "    if _rest: os.environ['PYTHONPATH'] = _rest",
        "    else: os.environ.pop('PYTHONPATH', None)",
        "from _sscard_embed import ffi",
        "from sbcard.national import cabi",
    ]
    for name, params in decls:
        args = ", ".join(p for _t, p in params)
        lines += [
            "",
            f"@ffi.def_extern(name={PY + name!r}, error=-999)",
            f"def _{name}({args}):",
            f"    return cabi.call(ffi, {name!r}, ({args}{',' if len(params) == 1 else ''}))",
        ]
    return "\n".join(lines) + "\n"


def build(outdir: str | Path = "build/native", *, verbose: bool = False) -> Path:
    import cffi

    out = Path(outdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    decls = declarations()
    ffibuilder = cffi.FFI()
    ffibuilder.embedding_api("\n".join(f"{_proto(PY + name, params)};"
                                       for name, params in decls))
    ffibuilder.set_source("_sscard_embed", c_source(decls), include_dirs=[str(NATIVE)])
    ffibuilder.embedding_init_code(init_code(decls))
    # the header first: the C source includes "SSCardDriver.h" from its own folder (``out``),
    # so a copy left by an earlier build would otherwise win over the current one
    (out / "SSCardDriver.h").write_text(header_text(), encoding="utf-8")
    built = ffibuilder.compile(tmpdir=str(out), target="libSSCardDriver.*", verbose=verbose)
    return Path(built)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--header"]:                  # after a change to cabi.OUTPUT_SIZES
        HEADER.write_text(header_text(), encoding="utf-8")
        print(HEADER)
        return
    print(build(args[0] if args else "build/native"))


if __name__ == "__main__":
    main()

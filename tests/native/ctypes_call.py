"""The ctypes face of libSSCardDriver.so for the tests: ``python -m tests.native.ctypes_call LIB``
speaks the line protocol of ``sscard_call LIB serve`` (tests/native/sscard_call.c): one line
``FUNCTION\\tARG…`` in, one line ``CODE\\tOUT1[\\tOUT2]`` out, one library load for them all.

Argument types follow the header (``iType``/``iAuthType`` int, the rest ``char*``) through
``cabi.SIGNATURES``, the table the library is built from; each output buffer is the
function's size (``cabi.output_size``: SSCARD_MAX_OUTPUT_<function> of the header) followed by
a guard zone that must be untouched after the call, as in the C program.
"""

from __future__ import annotations

import ctypes
import sys

from sbcard.national.cabi import SIGNATURES, output_size

GUARD = 256


def main(argv: list[str]) -> int:
    lib = ctypes.CDLL(argv[0])
    for name, (inputs, outputs) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_int if n.startswith("i") else ctypes.c_char_p for n in inputs
                       ] + [ctypes.c_char_p] * len(outputs)
        fn.restype = ctypes.c_long
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        name, *args = raw.rstrip(b"\r\n").split(b"\t")
        inputs, outputs = SIGNATURES.get(name.decode("ascii", "replace"), ((), ()))
        if not outputs or len(args) != len(inputs):
            out.write(b"ERROR\tno function %s with %d inputs\n" % (name, len(args)))
            out.flush()
            continue
        values = [int(a) if n.startswith("i") else a for n, a in zip(inputs, args, strict=True)]
        size = output_size(name.decode())
        buffers = [ctypes.create_string_buffer(b"\xa5" * (size + GUARD), size + GUARD)
                   for _ in outputs]
        code = getattr(lib, name.decode())(*values, *buffers)
        for b in buffers:
            if b.raw[size:] != b"\xa5" * GUARD or b"\0" not in b.raw[:size]:
                sys.stderr.write(f"OVERFLOW in {name.decode()}\n")
                return 4
        out.write(b"\t".join([str(code).encode(), *(b.value for b in buffers)]) + b"\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

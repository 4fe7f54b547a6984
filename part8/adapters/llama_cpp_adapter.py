"""llama_cpp_adapter.py — llama.cpp behind silica's adapter protocol
(PROTOCOL.md), through llama.cpp's own shared library (libllama, the library
its llama-cli / llama-server link) called with ctypes: reads GGUF files,
feeds exactly the given token ids (the command-line tools take text, not ids)
and reads every position's logits (llama_get_logits_ith).  CPU unless the
library was built with a GPU backend.

Where the library is: $LLAMA_CPP_LIB (the file, or its folder), else next to
llama-cli / llama-server / llama-tokenize on PATH (a cmake build's build/bin) or in ../lib of
it (an installed prefix: /usr/local, Homebrew), else the system's search
path.  Not found: the engine is "not installed".

Declared: functions and llama_batch, stable across llama.cpp releases.
llama_model_params and llama_context_params change from release to release;
they are opaque buffers larger than any release's struct, filled by
llama_*_default_params and passed back by value (a struct that large goes
through memory: x86-64 SysV, AArch64), with only the four leading uint32
fields of llama_context_params (n_ctx, n_batch, n_ubatch, n_seq_max) written.
No numpy in this process: with numpy imported, llama_model_load_from_file
crashed (llama.cpp 3f545be, CPU build, numpy 2.5; without numpy the same
library loaded the same file); rows are array('f') (protocol.Rows).
"""
import array
import ctypes
import ctypes.util
import faulthandler
import os
import shutil
import subprocess
import sys
from pathlib import Path

from protocol import serve

LIB_NAMES = ("libllama.so", "libllama.dylib", "llama.dll")
TOOLS = ("llama-cli", "llama-server", "llama-completion", "llama-tokenize")


def find_library():
    env = os.environ.get("LLAMA_CPP_LIB")
    if env:
        p = Path(env)
        cands = [p] if p.is_file() else [p / n for n in LIB_NAMES]
        for c in cands:
            if c.is_file():
                return str(c)
        raise ImportError(f"LLAMA_CPP_LIB={env}: no libllama there")
    for tool in TOOLS:
        exe = shutil.which(tool)
        if exe:
            bindir = Path(exe).resolve().parent
            for d in (bindir, bindir.parent / "lib"):
                for n in LIB_NAMES:
                    if (d / n).is_file():
                        return str(d / n)
    found = ctypes.util.find_library("llama")
    if found:
        return found
    raise ImportError("no libllama (set LLAMA_CPP_LIB, or put llama-cli on PATH)")


class Batch(ctypes.Structure):
    _fields_ = [("n_tokens", ctypes.c_int32), ("token", ctypes.POINTER(ctypes.c_int32)),
                ("embd", ctypes.POINTER(ctypes.c_float)), ("pos", ctypes.POINTER(ctypes.c_int32)),
                ("n_seq_id", ctypes.POINTER(ctypes.c_int32)),
                ("seq_id", ctypes.POINTER(ctypes.POINTER(ctypes.c_int32))),
                ("logits", ctypes.POINTER(ctypes.c_int8))]


def opaque_struct(name, lead=()):
    """A struct of the given leading fields and then 1 KiB of uint64 scalars: larger than any
    release's llama_*_params.  Scalars, not an array: ctypes describes an array member to libffi
    in a way that breaks passing such a struct by value on some Python versions."""
    fields = list(lead) + [(f"_opaque{i}", ctypes.c_uint64) for i in range(128)]
    return type(name, (ctypes.Structure,), {"_fields_": fields})


ModelParams = opaque_struct("ModelParams")
ContextParams = opaque_struct("ContextParams", [("n_ctx", ctypes.c_uint32), ("n_batch", ctypes.c_uint32),
                                                ("n_ubatch", ctypes.c_uint32), ("n_seq_max", ctypes.c_uint32)])


def bind(path):
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(f"{path}: {e}") from None
    p, i32 = ctypes.c_void_p, ctypes.c_int32
    sig = {
        "llama_backend_init": (None, []),
        "llama_model_default_params": (ModelParams, []),
        "llama_context_default_params": (ContextParams, []),
        "llama_model_load_from_file": (p, [ctypes.c_char_p, ModelParams]),
        "llama_init_from_model": (p, [p, ContextParams]),
        "llama_model_get_vocab": (p, [p]),
        "llama_vocab_n_tokens": (i32, [p]),
        "llama_get_memory": (p, [p]),
        "llama_memory_clear": (None, [p, ctypes.c_bool]),
        "llama_batch_init": (Batch, [i32, i32, i32]),
        "llama_batch_free": (None, [Batch]),
        "llama_decode": (i32, [p, Batch]),
        "llama_get_logits_ith": (ctypes.POINTER(ctypes.c_float), [p, i32]),
        "llama_set_n_threads": (None, [p, i32, i32]),
        "llama_free": (None, [p]),
        "llama_model_free": (None, [p]),
        "llama_print_system_info": (ctypes.c_char_p, []),
    }
    for name, (res, args) in sig.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"{path} has no {name}: not a llama.cpp library this adapter knows") from None
        f.restype, f.argtypes = res, args
    return lib


def version_of(path):
    """`--version` of a llama.cpp tool beside the library (build number and commit), else the path."""
    for tool in TOOLS:
        exe = Path(path).resolve().parent / tool
        if exe.is_file():
            try:
                p = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
                line = next((l for l in (p.stdout + p.stderr).splitlines() if l.startswith("version:")), None)
                if line:
                    return f"llama.cpp {line[len('version:'):].strip()}"
            except (OSError, subprocess.SubprocessError):
                pass
    return f"llama.cpp ({path})"


def open_engine():
    path = find_library()
    lib = bind(path)
    lib.llama_backend_init()

    threads = int(os.environ.get("LLAMA_CPP_THREADS", "0")) or min(os.cpu_count() or 4, 16)

    class Model:
        def __init__(self, model_path, n_ctx):
            self.model = lib.llama_model_load_from_file(os.fsencode(model_path), lib.llama_model_default_params())
            if not self.model:
                raise ValueError(f"llama.cpp could not load {model_path} (its log is on stderr)")
            cp = lib.llama_context_default_params()
            cp.n_ctx = cp.n_batch = cp.n_ubatch = max(int(n_ctx), 8)
            cp.n_seq_max = 1
            self.n_ctx = cp.n_ctx
            self.ctx = lib.llama_init_from_model(self.model, cp)
            if not self.ctx:
                lib.llama_model_free(self.model)
                raise ValueError(f"llama.cpp could not make a context of {n_ctx} for {model_path}")
            lib.llama_set_n_threads(self.ctx, threads, threads)
            self.vocab = int(lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self.model)))
            self.pos = 0

        def __del__(self):
            if getattr(self, "ctx", None):
                lib.llama_free(self.ctx)
            if getattr(self, "model", None):
                lib.llama_model_free(self.model)

        def _decode(self, ids):
            """Decode ids at the next positions; every position's logits, [len(ids), vocab]."""
            n = len(ids)
            if self.pos + n > self.n_ctx:
                raise ValueError(f"{self.pos + n} tokens exceed the context of {self.n_ctx}")
            b = lib.llama_batch_init(n, 0, 1)
            try:
                b.n_tokens = n
                for k, t in enumerate(ids):
                    b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = int(t), self.pos + k, 1, 1
                    b.seq_id[k][0] = 0
                rc = lib.llama_decode(self.ctx, b)
                if rc != 0:
                    raise ValueError(f"llama_decode returned {rc}")
            finally:
                lib.llama_batch_free(b)
            self.pos += n
            # rows of array('f'), no numpy: with numpy imported, libllama crashed loading a model
            return [array.array("f", ctypes.string_at(lib.llama_get_logits_ith(self.ctx, k), 4 * self.vocab))
                    for k in range(n)]

        def prompt(self, ids):
            lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
            self.pos = 0
            return self._decode(ids)

        def next(self, i):
            return self._decode([i])[-1]

    return version_of(path), ["gguf"], Model


if __name__ == "__main__":
    faulthandler.enable()   # a crash inside the library leaves a traceback on stderr
    serve("llama.cpp", open_engine)

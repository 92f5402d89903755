"""One ELF section of a file, read on the host: the BTF a kernel carries (vmlinux's .BTF), by digest."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path


def section_digest(path: Path, name: str) -> str:
    """sha256 of the named section's bytes; "" when the file or the section is not there."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if ident[:4] != b"\x7fELF":
                return ""
            wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
            f.seek(0x28 if wide else 0x20)
            shoff = struct.unpack(order + ("Q" if wide else "I"), f.read(8 if wide else 4))[0]
            f.seek(0x3A if wide else 0x2E)
            shentsize, shnum, shstrndx = struct.unpack(order + "HHH", f.read(6))
            headers = []
            for i in range(shnum):
                f.seek(shoff + i * shentsize)
                raw = f.read(shentsize)
                if wide:
                    sh_name, _, _, _, offset, size = struct.unpack(order + "IIQQQQ", raw[:40])
                else:
                    sh_name, _, _, _, offset, size = struct.unpack(order + "IIIIII", raw[:24])
                headers.append((sh_name, offset, size))
            _, str_off, str_size = headers[shstrndx]
            f.seek(str_off)
            names = f.read(str_size)
            for sh_name, offset, size in headers:
                if names[sh_name:names.index(b"\0", sh_name)].decode(errors="replace") == name:
                    f.seek(offset)
                    return hashlib.sha256(f.read(size)).hexdigest()
    except (OSError, struct.error, ValueError, IndexError):
        return ""
    return ""

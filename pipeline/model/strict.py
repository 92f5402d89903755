"""YAML into frozen dataclasses, strictly: unknown and missing keys, and values of the wrong
type, are user errors naming the file and the key, so a typo never silently changes behaviour."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import yaml

from pipeline.infra.errors import UserError


def _convert(tp, value, where: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list):
            raise UserError(f"{where} must be a list, got {value!r}. Fix the YAML.")
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise UserError(f"{where} must be a list of strings, got {bad[0]!r} ({type(bad[0]).__name__}). "
                            "Quote it in the YAML.")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, where)
    if tp is bool and not isinstance(value, bool):
        raise UserError(f"{where} must be true or false, got {value!r}. Fix the YAML.")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{where} must be an integer, got {value!r}. Fix the YAML.")
    if tp is str and not isinstance(value, str):
        # YAML reads 01234567 as an octal number and 7.10 as 7.1: never guess what was meant
        raise UserError(f"{where} must be text, but YAML read what is written there as the "
                        f"{type(value).__name__} {value!r} (unquoted digits are numbers: 01234567 is octal "
                        "342391, 7.10 is 7.1). Put the value in quotes in the YAML.")
    if tp is str:
        return value
    if tp is dict and not isinstance(value, dict):
        raise UserError(f"{where} must be a mapping, got {value!r}. Fix the YAML.")
    return value


def build(cls, data, where: str):
    """Build dataclass cls from a mapping, rejecting unknown and missing keys."""
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a mapping of keys to values, got {type(data).__name__}. Fix the YAML.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(
            f"{where} has unknown key(s) {', '.join(unknown)}; valid keys are "
            f"{', '.join(sorted(fields))}. Fix the spelling or remove them."
        )
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{where} lacks the required key '{name}'. Add it to the YAML.")
            continue
        kwargs[name] = _convert(hints[name], data[name], f"{where}: '{name}'")
    try:
        return cls(**kwargs)
    except UserError as exc:
        raise UserError(f"{where}: {exc.message}") from None


def read_yaml(path: Path):
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise UserError(f"The config file {path} does not exist.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = str(exc).replace("\n", " ")
        raise UserError(f"{path} is not valid YAML ({detail}). Fix the file and rerun.") from exc


def size_bytes(text: str) -> int:
    """'16g', '512M', '1024' -> bytes."""
    units = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    number, unit = text.strip().lower().rstrip("ib").rstrip(), ""
    if number and number[-1] in units:
        number, unit = number[:-1], number[-1]
    return int(float(number) * units[unit])

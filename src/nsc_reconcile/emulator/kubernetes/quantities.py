"""Kubernetes quantities as the API server stores them: parsed (apimachinery's grammar) and
written back in canonical form (``0.5`` -> ``500m``, ``1024Mi`` -> ``1Gi``, ``2000`` -> ``2k``),
so a client that compares strings sees what a real cluster would show it. Pure functions.
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal

_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
)
_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_SI_SUFFIX = {exponent: suffix for suffix, exponent in _SI.items()}
_BINARY = {"K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}
_BINARY_SUFFIX = {0: "", **{power: f"{prefix}i" for prefix, power in _BINARY.items()}}
_NANO = Decimal("1e-9")

MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def canonical(text: str) -> str:
    """The canonical form of quantity ``text``; raises ValueError when it is not one.

    As apimachinery's ``Quantity.String``: the suffix family of the input is kept (decimal SI,
    binary SI, decimal exponent), binary becomes decimal below 1024 or when fractional,
    precision stops at nano units (rounded up), and the largest suffix that keeps an integer
    mantissa is used."""
    found = _QUANTITY.match(text.strip())
    if found is None:
        raise ValueError(MESSAGE)
    number, suffix = Decimal(found.group(1)), found.group(2) or ""
    if suffix.endswith("i"):
        family, value = "binary", number * (2 ** _BINARY[suffix[0]])
    elif suffix[:1] in ("e", "E"):
        family, value = "exponent", number.scaleb(int(suffix[1:]))
    else:
        family, value = "decimal", number.scaleb(_SI[suffix])
    value = value.quantize(_NANO, rounding=ROUND_UP)
    if value == 0:
        return "0"
    if family == "binary" and (abs(value) < 1024 or value != value.to_integral_value()):
        family = "decimal"
    if family == "binary":
        mantissa, power = int(value), 0
        while mantissa % 1024 == 0 and power < 60:
            mantissa, power = mantissa // 1024, power + 10
        return f"{mantissa}{_BINARY_SUFFIX[power]}"
    mantissa, exponent = int(value.scaleb(9)), -9
    while mantissa % 1000 == 0 and exponent < 18:
        mantissa, exponent = mantissa // 1000, exponent + 3
    if family == "exponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return f"{mantissa}{_SI_SUFFIX[exponent]}"


def canonical_map(values: object) -> object:
    """A ``requests``/``limits``/``capacity`` map with every quantity canonical; raises
    ValueError on a value that is not a quantity. Anything but a map is returned as is."""
    if not isinstance(values, dict):
        return values
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(MESSAGE)
        out[key] = canonical(str(value))
    return out

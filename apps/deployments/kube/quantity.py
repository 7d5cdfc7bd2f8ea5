"""Kubernetes resource quantities ("500m", "1Gi", "2"), parsed for validation and comparison."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
# The API server also takes exponents ("1e3"); the portal's forms need no more than suffixes.
_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
)


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity the portal accepts."""


def parse_quantity(text: str) -> Decimal:
    """The value of a quantity in base units (cores, bytes)."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise QuantityError(
            f"“{text}” is not a Kubernetes quantity; use forms like 250m, 1, 512Mi or 2Gi."
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise QuantityError(f"“{text}” is not a number.") from None
    return number * _SUFFIXES[match["suffix"] or ""]

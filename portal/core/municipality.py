"""全国地方公共団体コード (local government codes) with their check digit."""

import re

_FIVE_DIGITS = re.compile(r"^\d{5}$")
_SIX_DIGITS = re.compile(r"^\d{6}$")
_WEIGHTS = (6, 5, 4, 3, 2)


def check_digit(jis_code: str) -> str:
    """Return the check digit for a five-digit JIS X 0402 code."""
    if not _FIVE_DIGITS.match(jis_code):
        raise ValueError(f"JIS X 0402 code must be five digits, got {jis_code!r}")
    total = sum(int(digit) * weight for digit, weight in zip(jis_code, _WEIGHTS, strict=True))
    return str((11 - total % 11) % 10)


def with_check_digit(jis_code: str) -> str:
    """Return the six-digit 全国地方公共団体コード for a five-digit code."""
    return jis_code + check_digit(jis_code)


def is_valid_code(code: str) -> bool:
    """Tell whether a six-digit 全国地方公共団体コード has the right check digit."""
    return bool(_SIX_DIGITS.match(code)) and check_digit(code[:5]) == code[5]

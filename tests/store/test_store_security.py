"""Password hashing: scrypt with salt and stored parameters."""

from __future__ import annotations

import pytest

from recist_tool.store.security import hash_password, verify_password


def test_scrypt_hash_roundtrip_salted_and_parameterised() -> None:
    a, b = hash_password("correct horse", n=1024), hash_password("correct horse", n=1024)
    assert a != b  # fresh salt each time
    scheme, n, r, p, salt, digest = a.split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1") and salt and digest
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct horsf", a)
    assert not verify_password("correct horse", "md5$abc") and not verify_password("x", "garbage")
    with pytest.raises(ValueError, match="power of two"):
        hash_password("pw", n=1000)
    with pytest.raises(ValueError, match="power of two"):
        hash_password("pw", n=16)

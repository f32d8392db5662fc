"""gpg writes straight into a plain file object given as the sink (no plaintext through Python), over real gpg."""

from __future__ import annotations

import io
import os
import shutil
import tempfile

import pytest

from airflow_provider_lytics.io import pgp_keyring
from airflow_provider_lytics.io.pgp import PgpCipher
from tests.integration.test_pgp import _kill_agent, make_test_keys

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    made = make_test_keys(tmp_path_factory.getbasetemp() / "pgp-direct-keys")
    yield made
    _kill_agent(made.cli_home)


class _Hashing(io.RawIOBase):
    """A sink whose write does more than write (exposes fileno too): must keep getting every byte via Python."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self.seen = inner, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.seen += len(data)
        return self.inner.write(data)

    def fileno(self) -> int:
        return self.inner.fileno()


def test_direct_output_into_file_objects(keys, tmp_path, monkeypatch) -> None:
    key = keys["ed"]
    cipher = PgpCipher(public_key=key.public, private_key=key.private, tmp_dir=tmp_path, reuse_keyring=True)
    plain = os.urandom(3_000_000)
    (tmp_path / "p.bin").write_bytes(plain)
    cipher.encrypt_file(tmp_path / "p.bin", tmp_path / "c.gpg", compress=False)
    used: list[int | None] = []
    real = pgp_keyring._regular_file_fd
    monkeypatch.setattr(pgp_keyring, "_regular_file_fd", lambda sink: used.append(real(sink)) or used[-1])

    with tempfile.TemporaryFile(dir=tmp_path) as spool:
        spool.write(b"header")  # buffered, not yet on disk: must land before gpg's output
        with open(tmp_path / "c.gpg", "rb") as src, cipher.open_decryptor(spool) as sink:
            shutil.copyfileobj(src, sink, 1 << 16)
        assert used[-1] is not None  # gpg wrote into the spool itself
        assert spool.tell() == 6 + len(plain)
        spool.seek(0)
        assert spool.read() == b"header" + plain

    with open(tmp_path / "c.gpg", "rb") as src, open(tmp_path / "o.bin", "wb") as out:
        stats = cipher.decrypt_stream(src, out)
    assert used[-1] is not None and stats.bytes_out == len(plain)
    assert (tmp_path / "o.bin").read_bytes() == plain

    with open(tmp_path / "w.bin", "wb") as raw, open(tmp_path / "c.gpg", "rb") as src:
        wrapped = _Hashing(raw)
        stats = cipher.decrypt_stream(src, wrapped)
    assert used[-1] is None and wrapped.seen == stats.bytes_out == len(plain)  # a wrapper still sees every byte
    assert (tmp_path / "w.bin").read_bytes() == plain
    cipher.close()

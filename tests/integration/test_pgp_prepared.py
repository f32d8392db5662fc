"""One prepared key ring reused by all calls of a hook's cipher (``io/pgp_prepared.py``), over real gpg: set up
once, still no passphrase caching, safe from threads and forks, and gone after close, garbage collection or exit."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_lytics.hooks.pgp import PgpHook
from airflow_provider_lytics.io.pgp import PgpCipher
from airflow_provider_lytics.io.pgp_errors import PgpPassphraseError
from airflow_provider_lytics.io.pgp_keyring import PgpKeyring
from tests.integration.test_pgp import _agents_for, _kill_agent, make_test_keys

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    made = make_test_keys(tmp_path_factory.getbasetemp() / "pgp-prepared-keys")
    yield made
    _kill_agent(made.cli_home)


@pytest.fixture
def rings(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rings")  # short path: gpg-agent sockets live in the ring directory


def _reusing(key, rings: Path) -> PgpCipher:
    return PgpCipher(
        public_key=key.public, private_key=key.private, passphrase=key.passphrase, tmp_dir=rings, reuse_keyring=True
    )


def _count_gpg_runs(monkeypatch) -> list[list[str]]:
    runs: list[list[str]] = []
    real_popen = subprocess.Popen.__init__

    def spy(self, args, *a, **kw):
        runs.append([str(x) for x in args])
        return real_popen(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    return runs


def test_calls_share_one_ring_and_import_each_key_once(keys, rings, tmp_path, monkeypatch) -> None:
    key = keys["rsa"]  # passphrase protected
    cipher = _reusing(key, rings)
    src = tmp_path / "p.csv"
    src.write_bytes(b"id,email\n" * 50_000)
    runs = _count_gpg_runs(monkeypatch)
    for i in range(3):
        cipher.encrypt_file(src, tmp_path / f"c{i}.gpg")
        cipher.decrypt_file(tmp_path / f"c{i}.gpg", tmp_path / f"o{i}.csv")
        assert (tmp_path / f"o{i}.csv").read_bytes() == src.read_bytes()
    homes = [p for p in rings.iterdir()]
    assert len(homes) == 1 and (homes[0].stat().st_mode & 0o777) == 0o700
    imports = [r for r in runs if "--import" in r]
    assert len(imports) == 2  # the public and the private key, once each
    probes = [r for r in runs if "--list-config" in r]
    assert len(probes) == 1  # python-gnupg's version probe: once per ring, not per call
    cipher.close()
    assert list(rings.iterdir()) == []
    time.sleep(0.2)
    assert _agents_for(str(rings)) == []
    cipher.close()  # idempotent
    cipher.encrypt_file(src, tmp_path / "again.gpg")  # a closed cipher prepares a new ring when used again
    assert len(list(rings.iterdir())) == 1
    cipher.close()
    assert list(rings.iterdir()) == []


def test_passphrase_is_still_needed_on_every_call(keys, rings, tmp_path) -> None:
    key = keys["rsa"]
    cipher = _reusing(key, rings)
    src = tmp_path / "p.txt"
    src.write_bytes(b"no caching\n")
    cipher.encrypt_file(src, tmp_path / "c.gpg")
    cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "o.txt")  # unlocks the key once with the right passphrase
    cipher._passphrase = "wrong"
    with pytest.raises(PgpPassphraseError, match="wrong passphrase"):
        cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "o2.txt")
    cipher._passphrase = None
    with pytest.raises(PgpPassphraseError, match="no passphrase was given"):
        cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "o3.txt")
    assert not (tmp_path / "o2.txt").exists() and not (tmp_path / "o3.txt").exists()
    cipher.close()


def test_encrypt_only_ring_starts_no_agent(keys, rings, tmp_path) -> None:
    cipher = PgpCipher(public_key=keys["ed"].public, tmp_dir=rings, reuse_keyring=True)
    src = tmp_path / "p.txt"
    src.write_bytes(b"x" * 10_000)
    cipher.encrypt_file(src, tmp_path / "c.gpg")
    home = Path(cipher._prepared.homedir)
    assert not list(home.glob("S.gpg-agent*"))
    assert [cmd for cmd in _agents_for(str(home)) if "gpg-agent" in cmd] == []
    cipher.close()


def test_garbage_collection_removes_the_ring_and_agent(keys, rings, tmp_path) -> None:
    key = keys["rsa"]
    cipher = _reusing(key, rings)
    src = tmp_path / "p.txt"
    src.write_bytes(b"gc\n")
    cipher.encrypt_file(src, tmp_path / "c.gpg")
    cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "o.txt")  # starts the ring's agent
    assert len(list(rings.iterdir())) == 1
    del cipher
    gc.collect()
    assert list(rings.iterdir()) == []
    time.sleep(0.2)
    assert _agents_for(str(rings)) == []


def test_threads_share_the_ring(keys, rings, tmp_path) -> None:
    key = keys["ed"]
    cipher = _reusing(key, rings)
    sources = []
    for i in range(4):
        src = tmp_path / f"p{i}.bin"
        src.write_bytes(os.urandom(2_000_000 + i))
        sources.append(src)
    errors: list[BaseException] = []

    def work(src: Path) -> None:
        try:
            for _ in range(2):
                cipher.encrypt_file(src, src.with_suffix(".gpg"), compress=False)
                cipher.decrypt_file(src.with_suffix(".gpg"), src.with_suffix(".out"))
                assert src.with_suffix(".out").read_bytes() == src.read_bytes()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(src,)) for src in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(rings.iterdir())) == 1
    cipher.close()


def _wait_gone(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while path.exists() or _agents_for(str(path)):
        assert time.monotonic() < deadline, f"{path} or its gpg-agent still there after {timeout} s"
        time.sleep(0.1)


def _child(cipher: PgpCipher, src: str, queue: multiprocessing.Queue) -> None:
    cipher.decrypt_file(src + ".gpg", src + ".child")
    queue.put(cipher._prepared.homedir)


def test_forked_child_prepares_its_own_ring(keys, rings, tmp_path) -> None:
    cipher = _reusing(keys["ed"], rings)
    src = tmp_path / "p.txt"
    src.write_bytes(b"fork\n")
    cipher.encrypt_file(src, Path(f"{src}.gpg"))
    parent_home = cipher._prepared.homedir
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(cipher, str(src), queue))
    proc.start()
    child_home = queue.get(timeout=60)
    proc.join(60)
    assert proc.exitcode == 0
    assert child_home != parent_home
    assert Path(parent_home).is_dir()  # the child's exit did not remove the parent's ring
    # multiprocessing ends the child with os._exit (no exit handlers): the child's watchdog removes its ring.
    _wait_gone(Path(child_home))
    cipher.decrypt_file(Path(f"{src}.gpg"), tmp_path / "parent.txt")
    assert (tmp_path / "parent.txt").read_bytes() == b"fork\n"
    cipher.close()


def test_hook_calls_share_one_ring_until_close(keys, rings, tmp_path, monkeypatch) -> None:
    key = keys["rsa"]
    extra = {"public_key": key.public, "private_key": key.private, "passphrase": key.passphrase}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_PGP", json.dumps({"conn_type": "pgp", "extra": extra}))
    opened: list[str] = []
    real_open = PgpKeyring.open

    def spy(self) -> None:
        real_open(self)
        opened.append(self.homedir)

    monkeypatch.setattr(PgpKeyring, "open", spy)
    hook = PgpHook("partner_pgp", tmp_dir=str(rings))
    src = tmp_path / "p.txt"
    src.write_bytes(b"hook\n" * 1000)
    hook.encrypt_file(src, tmp_path / "c.gpg")
    hook.decrypt_file(tmp_path / "c.gpg", tmp_path / "o.txt")
    hook.encrypt_file(src, tmp_path / "c2.gpg")
    assert (tmp_path / "o.txt").read_bytes() == src.read_bytes()
    assert len(opened) == 1
    hook.close()
    assert list(rings.iterdir()) == []


_EXIT_HARD = """
import os, sys
from airflow_provider_lytics.io.pgp import PgpCipher
key = open(sys.argv[1]).read()
cipher = PgpCipher(private_key=key, passphrase=sys.argv[2] or None, tmp_dir=sys.argv[3], reuse_keyring=True)
cipher.decrypt_file(sys.argv[4], sys.argv[5])
print(cipher._prepared.homedir, flush=True)
os._exit(0) if sys.argv[6] == "exit" else os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_ring_is_removed_when_the_process_ends_without_exit_handlers(keys, rings, tmp_path, how) -> None:
    """Airflow 2's forked task runner ends with os._exit; a killed task runs nothing at all."""
    key = keys["rsa"]
    src = tmp_path / "p.txt"
    src.write_bytes(b"hard exit\n")
    PgpCipher(public_key=key.public).encrypt_file(src, tmp_path / "c.gpg")
    (tmp_path / "sec.asc").write_text(key.private)
    proc = subprocess.run(
        [sys.executable, "-c", _EXIT_HARD, str(tmp_path / "sec.asc"), key.passphrase or "", str(rings),
         str(tmp_path / "c.gpg"), str(tmp_path / "o.txt"), how],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    home = Path(proc.stdout.strip())
    assert home.parent == rings, proc.stderr
    assert (tmp_path / "o.txt").read_bytes() == b"hard exit\n"
    _wait_gone(home)
    assert list(rings.iterdir()) == []

"""Streaming PGP against the real gpg binary: interop with the gpg CLI, errors, cleanup, memory."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_lytics.io.pgp import PgpCipher
from airflow_provider_lytics.io.pgp_errors import (
    PgpError,
    PgpKeyMismatchError,
    PgpOperationError,
    PgpPassphraseError,
    PgpSignatureError,
)
from airflow_provider_lytics.io.pgp_keyring import PgpKeyring

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary (apt-get install gnupg)")

PASSPHRASE = "correct horse battery staple"

_KEY_PARAMS = {
    "rsa": "Key-Type: RSA\nKey-Length: 3072\nSubkey-Type: RSA\nSubkey-Length: 3072\n",
    "ed": "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n",
    "other": "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n",
}
#: Which test keys are passphrase protected.
_PROTECTED = {"rsa": True, "ed": False, "other": False}


@dataclass(frozen=True)
class PgpTestKey:
    name: str
    fingerprint: str
    public: str
    private: str
    passphrase: str | None


@dataclass(frozen=True)
class PgpTestKeys:
    keys: dict[str, PgpTestKey]
    cli_home: Path  # a gpg home holding every test key, for the "gpg CLI" side of interop tests

    def __getitem__(self, name: str) -> PgpTestKey:
        return self.keys[name]


def _gpg(home: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        input=stdin,
        capture_output=True,
        check=check,
        timeout=120,
    )


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)


def _remove_tree(path: Path) -> None:
    """Remove a gpg home even while its stopping agent deletes its own sockets (rmtree then finds one gone)."""
    for _ in range(20):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            if not path.exists():
                return
    raise AssertionError(f"could not remove {path}")


def make_test_keys(base: Path) -> PgpTestKeys:
    """Generate (once, cached under ``base``) RSA-3072 and Curve25519 key pairs with the gpg CLI."""
    cli_home = base / "cli-home"
    marker = base / "ready"
    if not marker.exists():
        base.mkdir(parents=True, exist_ok=True)
        procs = {}
        for name, params in _KEY_PARAMS.items():
            home = base / f"gen-{name}"
            _remove_tree(home)  # left by an earlier attempt that failed half-way
            home.mkdir(mode=0o700)
            protection = f"Passphrase: {PASSPHRASE}\n" if _PROTECTED[name] else "%no-protection\n"
            spec = f"{params}Name-Real: Lytics test {name}\nName-Email: {name}@example.com\nExpire-Date: 0\n"
            spec += protection + "%commit\n"
            procs[name] = subprocess.Popen(
                ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--gen-key"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs[name].communicate(spec.encode())  # parameters on stdin: no passphrase file left behind
        _remove_tree(cli_home)
        cli_home.mkdir(mode=0o700)
        (cli_home / "gpg-agent.conf").write_text(
            "default-cache-ttl 0\nmax-cache-ttl 0\nallow-loopback-pinentry\ns2k-count 65536\n"
        )
        for name in _KEY_PARAMS:
            home = base / f"gen-{name}"
            assert procs[name].wait() == 0, f"gpg key generation failed for {name}"
            pub = _gpg(home, "--armor", "--export").stdout
            sec_args = ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor", "--export-secret-keys"]
            sec = _gpg(home, *sec_args, stdin=(PASSPHRASE if _PROTECTED[name] else "").encode() + b"\n").stdout
            fpr = next(
                line.split(":")[9]
                for line in _gpg(home, "--with-colons", "--list-keys").stdout.decode().splitlines()
                if line.startswith("fpr:")
            )
            (base / f"{name}.pub.asc").write_bytes(pub)
            (base / f"{name}.sec.asc").write_bytes(sec)
            (base / f"{name}.fpr").write_text(fpr)
            _gpg(cli_home, "--import", stdin=sec)
            _kill_agent(home)
            _remove_tree(home)
        marker.write_text("ok")
    keys = {}
    for name in _KEY_PARAMS:
        keys[name] = PgpTestKey(
            name=name,
            fingerprint=(base / f"{name}.fpr").read_text(),
            public=(base / f"{name}.pub.asc").read_text(),
            private=(base / f"{name}.sec.asc").read_text(),
            passphrase=PASSPHRASE if _PROTECTED[name] else None,
        )
    return PgpTestKeys(keys=keys, cli_home=cli_home)


@pytest.fixture(scope="session")
def pgp_keys(tmp_path_factory: pytest.TempPathFactory) -> PgpTestKeys:
    keys = make_test_keys(tmp_path_factory.getbasetemp() / "pgp-test-keys")
    yield keys
    _kill_agent(keys.cli_home)


def cli_encrypt(keys: PgpTestKeys, fpr: str, src: Path, dst: Path, *, armor: bool = False) -> None:
    args = ["--trust-model", "always", "--recipient", fpr, "--output", str(dst)]
    _gpg(keys.cli_home, *args, *(["--armor"] if armor else []), "--encrypt", str(src))


def cli_decrypt(keys: PgpTestKeys, key: PgpTestKey, src: Path, dst: Path) -> None:
    args = ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--output", str(dst), "--decrypt", str(src)]
    _gpg(keys.cli_home, *args, stdin=(key.passphrase or "").encode() + b"\n")


def _cipher(key: PgpTestKey, **kw) -> PgpCipher:
    return PgpCipher(public_key=key.public, private_key=key.private, passphrase=key.passphrase, **kw)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        block = os.urandom(1 << 20)
        for i in range(size >> 20):
            fh.write(block[i % 251 :] + block[: i % 251])


def _agents_for(home_prefix: str) -> list[str]:
    """Command lines of running processes (gpg-agent, dirmngr, gpg) that mention ``home_prefix``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if home_prefix in cmd:
            found.append(cmd)
    return found


def _our_rings(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("lytics-pgp-*"))


# ---------------------------------------------------------------------------------------------------------------------
# Interop with the gpg CLI, both directions, both key types
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "armor"), [("rsa", True), ("ed", False)])
def test_cli_encrypts_we_decrypt(pgp_keys, tmp_path, name, armor):
    key = pgp_keys[name]
    src = tmp_path / "plain.bin"
    src.write_bytes(os.urandom(300_000) + b"tail")
    cli_encrypt(pgp_keys, key.fingerprint, src, tmp_path / "c.gpg", armor=armor)
    stats = _cipher(key).decrypt_file(tmp_path / "c.gpg", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    assert stats.bytes_out == src.stat().st_size
    assert stats.bytes_in == (tmp_path / "c.gpg").stat().st_size


@pytest.mark.parametrize(("name", "armor"), [("rsa", False), ("ed", True)])
def test_we_encrypt_cli_decrypts(pgp_keys, tmp_path, name, armor):
    key = pgp_keys[name]
    src = tmp_path / "plain.csv"
    src.write_bytes(b"id,email\n" + b"".join(b"%d,user%d@example.com\n" % (i, i) for i in range(20000)))
    stats = PgpCipher(public_key=key.public).encrypt_file(src, tmp_path / "c.gpg", armor=armor)
    data = (tmp_path / "c.gpg").read_bytes()
    assert data.startswith(b"-----BEGIN PGP MESSAGE-----") == armor
    assert stats.bytes_in == src.stat().st_size and stats.bytes_out == len(data)
    cli_decrypt(pgp_keys, key, tmp_path / "c.gpg", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == src.read_bytes()


def test_compress_none_keeps_incompressible_size_and_skips_compression(pgp_keys, tmp_path):
    key = pgp_keys["ed"]
    src = tmp_path / "text.txt"
    src.write_bytes(b"the same line again\n" * 50_000)  # 1 MB, compresses well
    cipher = PgpCipher(public_key=key.public)
    cipher.encrypt_file(src, tmp_path / "z.gpg")
    cipher.encrypt_file(src, tmp_path / "n.gpg", compress=False)
    assert (tmp_path / "z.gpg").stat().st_size < 100_000
    assert (tmp_path / "n.gpg").stat().st_size > 1_000_000
    listing = _gpg(pgp_keys.cli_home, "--list-packets", str(tmp_path / "n.gpg"), check=False).stdout.decode()
    assert "compressed packet" not in listing
    cli_decrypt(pgp_keys, key, tmp_path / "n.gpg", tmp_path / "n.txt")
    assert (tmp_path / "n.txt").read_bytes() == src.read_bytes()


# ---------------------------------------------------------------------------------------------------------------------
# Stream stages
# ---------------------------------------------------------------------------------------------------------------------


def test_encryptor_into_stream_then_decryptor_into_path(pgp_keys, tmp_path):
    key = pgp_keys["rsa"]
    cipher = _cipher(key)
    payload = [os.urandom(70_000) for _ in range(40)]
    remote = io.BytesIO()  # stands in for an SFTP remote file being uploaded
    with cipher.open_encryptor(remote) as w:
        for part in payload:
            w.write(part)
    remote.seek(0)
    with cipher.open_decryptor(tmp_path / "plain.bin") as w:  # stands in for a download writing into us
        shutil.copyfileobj(remote, w, 33_333)
    assert (tmp_path / "plain.bin").read_bytes() == b"".join(payload)


def test_encrypted_reader_feeds_consumer_and_decrypted_reader_yields_plaintext(pgp_keys, tmp_path):
    key = pgp_keys["ed"]
    cipher = _cipher(key)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2_000_000))
    uploaded = tmp_path / "uploaded.gpg"
    with cipher.encrypted_reader(src, armor=True) as r, open(uploaded, "wb") as out:
        shutil.copyfileobj(r, out, 32768)
    with open(uploaded, "rb") as fh, cipher.decrypted_reader(fh) as r:
        assert hashlib.sha256(r.read()).hexdigest() == _sha256(src)


def test_decrypted_reader_raises_at_the_end_instead_of_eof_on_truncated_input(pgp_keys, tmp_path):
    key = pgp_keys["ed"]
    cipher = _cipher(key)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1_000_000))
    cipher.encrypt_file(src, tmp_path / "c.gpg", compress=False)
    data = (tmp_path / "c.gpg").read_bytes()
    with pytest.raises(PgpOperationError), cipher.decrypted_reader(io.BytesIO(data[: len(data) // 2])) as r:
        while r.read(65536):
            pass


def test_exception_in_encryptor_body_leaves_no_output_and_no_ring(pgp_keys, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("enc")
    cipher = PgpCipher(public_key=pgp_keys["ed"].public, tmp_dir=tmp_path)
    target = tmp_path / "out.gpg"
    with pytest.raises(RuntimeError, match="producer broke"), cipher.open_encryptor(target) as w:
        w.write(os.urandom(1_000_000))
        raise RuntimeError("producer broke")
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_decryptor_with_wrong_key_fails_fast_while_producer_still_writes(pgp_keys, tmp_path, tmp_path_factory):
    cipher_ed = PgpCipher(public_key=pgp_keys["ed"].public)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3_000_000))
    cipher_ed.encrypt_file(src, tmp_path / "c.gpg", compress=False)
    rings = tmp_path_factory.mktemp("rings")  # short: gpg-agent sockets live in the ring directory
    wrong = PgpCipher(private_key=pgp_keys["other"].private, tmp_dir=rings)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    started = time.monotonic()
    with (
        pytest.raises(PgpKeyMismatchError),
        open(tmp_path / "c.gpg", "rb") as fh,
        wrong.open_decryptor(out_dir / "plain.bin") as w,
    ):
        shutil.copyfileobj(fh, w, 65536)
    assert time.monotonic() - started < 20
    assert list(out_dir.iterdir()) == []
    assert list(rings.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------------
# Errors: key pairing, passphrases, agent caching
# ---------------------------------------------------------------------------------------------------------------------


def test_decrypt_with_unpaired_private_key_names_both_key_ids(pgp_keys, tmp_path):
    src = tmp_path / "p.txt"
    src.write_bytes(b"secret rows\n")
    cli_encrypt(pgp_keys, pgp_keys["ed"].fingerprint, src, tmp_path / "c.gpg")
    other = pgp_keys["other"]
    with pytest.raises(PgpKeyMismatchError) as err:
        PgpCipher(private_key=other.private).decrypt_file(tmp_path / "c.gpg", tmp_path / "out.txt")
    msg = str(err.value)
    assert "does not pair" in msg
    assert other.fingerprint[-16:] in msg  # our key id
    enc_to = _gpg(pgp_keys.cli_home, "--list-packets", str(tmp_path / "c.gpg"), check=False).stdout.decode()
    assert any(tok.rstrip(",") in msg for tok in enc_to.split() if len(tok.rstrip(",")) == 16)
    assert "PRIVATE KEY" not in msg and other.private[60:120] not in msg
    assert not (tmp_path / "out.txt").exists()


def test_wrong_and_missing_passphrase_are_distinct_errors(pgp_keys, tmp_path):
    key = pgp_keys["rsa"]
    src = tmp_path / "p.txt"
    src.write_bytes(b"x" * 1000)
    PgpCipher(public_key=key.public).encrypt_file(src, tmp_path / "c.gpg")
    with pytest.raises(PgpPassphraseError, match="wrong passphrase") as wrong:
        PgpCipher(private_key=key.private, passphrase="not it").decrypt_file(tmp_path / "c.gpg", tmp_path / "o")
    with pytest.raises(PgpPassphraseError, match="no passphrase was given") as missing:
        PgpCipher(private_key=key.private).decrypt_file(tmp_path / "c.gpg", tmp_path / "o")
    assert str(wrong.value) != str(missing.value)
    assert "not it" not in str(wrong.value)
    assert not isinstance(wrong.value, PgpKeyMismatchError)
    assert not (tmp_path / "o").exists()


def test_agent_does_not_cache_a_correct_passphrase(pgp_keys, tmp_path):
    """Right passphrase then wrong one in the SAME key ring: the wrong one must still fail."""
    key = pgp_keys["rsa"]
    src = tmp_path / "p.txt"
    src.write_bytes(b"cache test\n")
    PgpCipher(public_key=key.public).encrypt_file(src, tmp_path / "c.gpg")
    with PgpKeyring() as ring:
        ring.import_key(key.private, "private")
        out = io.BytesIO()
        with open(tmp_path / "c.gpg", "rb") as fh:
            ring.decrypt(fh, out, passphrase=key.passphrase)
        assert out.getvalue() == b"cache test\n"
        with open(tmp_path / "c.gpg", "rb") as fh, pytest.raises(PgpPassphraseError):
            ring.decrypt(fh, io.BytesIO(), passphrase="wrong")
        with open(tmp_path / "c.gpg", "rb") as fh, pytest.raises(PgpPassphraseError):
            ring.decrypt(fh, io.BytesIO())


def test_garbage_ciphertext_is_a_clear_error(pgp_keys, tmp_path):
    (tmp_path / "c.gpg").write_bytes(b"this is not pgp at all\n" * 10)
    with pytest.raises(PgpOperationError, match="not OpenPGP"):
        _cipher(pgp_keys["ed"]).decrypt_file(tmp_path / "c.gpg", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_failed_decrypt_half_way_leaves_no_plaintext(pgp_keys, tmp_path):
    key = pgp_keys["ed"]
    cipher = _cipher(key)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(4_000_000))
    cipher.encrypt_file(src, tmp_path / "c.gpg", compress=False)
    data = bytearray((tmp_path / "c.gpg").read_bytes())
    (tmp_path / "trunc.gpg").write_bytes(bytes(data[: len(data) - 100_000]))
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.gpg").write_bytes(bytes(data))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for bad in ("trunc.gpg", "flipped.gpg"):
        with pytest.raises(PgpOperationError):
            cipher.decrypt_file(tmp_path / bad, out_dir / "plain.bin")
        assert list(out_dir.iterdir()) == [], bad


def test_too_long_ring_directory_is_a_clear_error(pgp_keys, tmp_path):
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    with pytest.raises(PgpError, match="too long for gpg-agent"):
        PgpCipher(private_key=pgp_keys["ed"].private, tmp_dir=deep).check_private_key()
    assert list(deep.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signer", ["rsa", "ed"])
def test_sign_verify_and_tampered_file_fails(pgp_keys, tmp_path, signer):
    key = pgp_keys[signer]
    data = tmp_path / "export.csv"
    data.write_bytes(b"id\n" + b"1\n" * 100_000)
    PgpCipher(private_key=key.private, passphrase=key.passphrase).sign_file(data, tmp_path / "export.csv.asc")
    verifier = PgpCipher(signer_public_keys=[pgp_keys["other"].public, key.public])
    info = verifier.verify_file(data, tmp_path / "export.csv.asc")
    assert info.fingerprint == key.fingerprint
    # the gpg CLI agrees
    _gpg(pgp_keys.cli_home, "--trust-model", "always", "--verify", str(tmp_path / "export.csv.asc"), str(data))
    with open(data, "r+b") as fh:
        fh.seek(50_000)
        fh.write(b"9")
    with pytest.raises(PgpSignatureError, match="BAD signature"):
        verifier.verify_file(data, tmp_path / "export.csv.asc")


def test_verify_rejects_signature_by_unknown_key(pgp_keys, tmp_path):
    data = tmp_path / "d.txt"
    data.write_bytes(b"hello\n")
    ed = pgp_keys["ed"]
    PgpCipher(private_key=ed.private).sign_file(data, tmp_path / "d.sig", armor=False)
    with pytest.raises(PgpSignatureError, match="not among the signer public keys"):
        PgpCipher(signer_public_keys=pgp_keys["other"].public).verify_file(data, tmp_path / "d.sig")


def test_cli_signature_verifies_with_us(pgp_keys, tmp_path):
    data = tmp_path / "d.txt"
    data.write_bytes(b"signed by the cli\n")
    ed = pgp_keys["ed"]
    _gpg(pgp_keys.cli_home, "--local-user", ed.fingerprint, "--detach-sign", "--armor", str(data))
    info = PgpCipher(signer_public_keys=ed.public).verify_file(
        io.BytesIO(data.read_bytes()), data.with_suffix(".txt.asc")
    )
    assert info.fingerprint == ed.fingerprint


def test_signed_encryption_verified_on_decrypt(pgp_keys, tmp_path):
    rsa, ed = pgp_keys["rsa"], pgp_keys["ed"]
    src = tmp_path / "p.txt"
    src.write_bytes(b"signed and encrypted\n")
    sender = PgpCipher(public_key=ed.public, private_key=rsa.private, passphrase=rsa.passphrase)
    sender.encrypt_file(src, tmp_path / "c.gpg", sign=True)
    receiver = PgpCipher(private_key=ed.private, signer_public_keys=rsa.public)
    receiver.decrypt_file(tmp_path / "c.gpg", tmp_path / "out.txt", verify=True)
    assert (tmp_path / "out.txt").read_bytes() == src.read_bytes()
    unsigned = tmp_path / "u.gpg"
    PgpCipher(public_key=ed.public).encrypt_file(src, unsigned)
    with pytest.raises(PgpSignatureError):
        receiver.decrypt_file(unsigned, tmp_path / "out2.txt", verify=True)
    assert not (tmp_path / "out2.txt").exists()


# ---------------------------------------------------------------------------------------------------------------------
# Hygiene: key rings, agents, secrets in logs
# ---------------------------------------------------------------------------------------------------------------------


def test_key_rings_and_agents_are_gone_after_success_and_failure(pgp_keys, tmp_path, tmp_path_factory):
    rings = tmp_path_factory.mktemp("rings")
    key = pgp_keys["rsa"]
    cipher = _cipher(key, tmp_dir=rings)
    src = tmp_path / "p.txt"
    src.write_bytes(b"data\n" * 1000)
    seen: list[str] = []
    original_open = PgpKeyring.open

    def spy(self):
        original_open(self)
        seen.append(self.homedir)
        assert (Path(self.homedir).stat().st_mode & 0o777) == 0o700
        conf = (Path(self.homedir) / "gpg-agent.conf").read_text()
        assert "default-cache-ttl 0" in conf and "max-cache-ttl 0" in conf

    PgpKeyring.open = spy
    kills: list[str] = []
    real_run = subprocess.run

    def run_spy(cmd, *args, **kwargs):
        if "gpgconf" in str(cmd[0]) and "--kill" in cmd:
            kills.append(cmd[cmd.index("--homedir") + 1])
        return real_run(cmd, *args, **kwargs)

    subprocess.run = run_spy
    try:
        cipher.encrypt_file(src, tmp_path / "c.gpg")
        cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "o.txt")  # starts an agent (secret key)
        with pytest.raises(PgpPassphraseError):
            PgpCipher(private_key=key.private, passphrase="bad", tmp_dir=rings).decrypt_file(
                tmp_path / "c.gpg", tmp_path / "o2.txt"
            )
        with pytest.raises(ZeroDivisionError), cipher.open_decryptor(io.BytesIO()) as w:
            w.write((tmp_path / "c.gpg").read_bytes()[:100])
            1 / 0  # noqa: B018
    finally:
        PgpKeyring.open = original_open
        subprocess.run = real_run
    assert len(seen) == 4
    # Every ring that started an agent (those holding a private key) had it stopped explicitly, not just orphaned
    # by removing its directory; the encrypt-only ring ran gpg with --no-autostart and never had one.
    assert kills == seen[1:]
    assert list(rings.iterdir()) == []
    time.sleep(0.2)
    assert _agents_for(str(rings)) == []


def test_secrets_never_reach_logs_or_errors(pgp_keys, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    key = pgp_keys["rsa"]
    src = tmp_path / "p.txt"
    src.write_bytes(b"payload\n")
    cipher = _cipher(key)
    cipher.encrypt_file(src, tmp_path / "c.gpg", sign=True)
    cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "o.txt")
    errors = []
    for bad in (PASSPHRASE + "!", None):
        try:
            PgpCipher(private_key=key.private, passphrase=bad).decrypt_file(tmp_path / "c.gpg", tmp_path / "x")
        except PgpError as exc:
            errors.append(f"{exc!r} {exc.__cause__!r}")
    assert len(errors) == 2
    body = key.private.splitlines()[3]  # a line of the base64 key body
    haystack = caplog.text + "".join(errors) + repr(cipher)
    assert PASSPHRASE not in haystack
    assert body not in haystack
    assert "PRIVATE KEY BLOCK" not in haystack


def test_passphrase_never_on_a_command_line(pgp_keys, tmp_path, monkeypatch):
    import gnupg

    argv: list[str] = []
    real_popen = gnupg.Popen

    def spy(cmd, *args, **kwargs):
        argv.extend(cmd)
        return real_popen(cmd, *args, **kwargs)

    monkeypatch.setattr(gnupg, "Popen", spy)
    real_run = subprocess.run

    def run_spy(cmd, *args, **kwargs):
        argv.extend(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run_spy)
    key = pgp_keys["rsa"]
    (tmp_path / "p.txt").write_bytes(b"argv check\n")
    cipher = _cipher(key)
    cipher.encrypt_file(tmp_path / "p.txt", tmp_path / "c.gpg", sign=True)
    cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "o.txt")
    assert "--passphrase-fd" in argv and "--decrypt" in argv
    assert not any(PASSPHRASE in a for a in argv)
    assert not any("PRIVATE KEY" in a for a in argv)


# ---------------------------------------------------------------------------------------------------------------------
# Memory: big files stream
# ---------------------------------------------------------------------------------------------------------------------


def _peak_rss_sampler() -> tuple[threading.Event, list[int]]:
    """Sample this process's RSS every 20 ms (VmHWM cannot be reset, so sample VmRSS)."""
    stop = threading.Event()
    peak = [0]

    def run() -> None:
        while not stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    peak[0] = max(peak[0], int(line.split()[1]) * 1024)
            stop.wait(0.02)

    threading.Thread(target=run, daemon=True).start()
    return stop, peak


@pytest.mark.slow
def test_80mb_round_trip_keeps_memory_flat(pgp_keys, tmp_path):
    key = pgp_keys["ed"]
    cipher = _cipher(key)
    src = tmp_path / "big.bin"
    _write_random(src, 80 << 20)
    baseline = int(
        next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:")).split()[1]
    )
    stop, peak = _peak_rss_sampler()
    try:
        cipher.encrypt_file(src, tmp_path / "big.gpg", compress=False)
        with cipher.encrypted_reader(src, compress=False) as r, cipher.open_decryptor(tmp_path / "via-stages.bin") as w:
            shutil.copyfileobj(r, w, 1 << 16)
        cipher.decrypt_file(tmp_path / "big.gpg", tmp_path / "big.out")
    finally:
        stop.set()
    growth = peak[0] - baseline * 1024
    assert growth < 40 << 20, f"RSS grew by {growth >> 20} MiB while moving 80 MiB files"
    digest = _sha256(src)
    assert _sha256(tmp_path / "big.out") == digest
    assert _sha256(tmp_path / "via-stages.bin") == digest


def test_decrypt_signed_by_unknown_key_is_a_signature_error(pgp_keys, tmp_path):
    """Verified decryption of a message signed by a key that is not an expected signer: PgpSignatureError (it
    was a generic PgpOperationError); without verification the same message decrypts."""
    ed, other, rsa = pgp_keys["ed"], pgp_keys["other"], pgp_keys["rsa"]
    src = tmp_path / "p.txt"
    src.write_bytes(b"signed by someone else\n")
    PgpCipher(public_key=ed.public, private_key=other.private).encrypt_file(src, tmp_path / "c.gpg", sign=True)
    receiver = PgpCipher(private_key=ed.private, signer_public_keys=rsa.public)
    with pytest.raises(PgpSignatureError, match=r"key id|not an expected signer"):
        receiver.decrypt_file(tmp_path / "c.gpg", tmp_path / "out.txt", verify=True)
    assert not (tmp_path / "out.txt").exists()
    PgpCipher(private_key=ed.private).decrypt_file(tmp_path / "c.gpg", tmp_path / "plain.txt")
    assert (tmp_path / "plain.txt").read_bytes() == src.read_bytes()

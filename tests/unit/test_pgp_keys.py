"""PGP key validation, the stream channel, and PgpHook over an AIRFLOW_CONN_* connection (real gpg, no DB)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import threading

import pytest

from airflow_provider_lytics.hooks.pgp import CONN_FIELDS, PgpHook
from airflow_provider_lytics.io.pgp import PgpCipher
from airflow_provider_lytics.io.pgp_channel import CHUNK_SIZE, _Channel
from airflow_provider_lytics.io.pgp_errors import PgpConfigError, PgpKeyFormatError
from airflow_provider_lytics.io.pgp_keyring import PgpKeyring
from airflow_provider_lytics.io.pgp_keys import (
    PRIVATE_KEY_FOOTER,
    PRIVATE_KEY_HEADER,
    PUBLIC_KEY_FOOTER,
    PUBLIC_KEY_HEADER,
    normalize_armored_key,
    split_public_key_blocks,
)
from tests.integration.test_pgp import PASSPHRASE, make_test_keys

needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary (apt-get install gnupg)")

FAKE_PUBLIC = f"{PUBLIC_KEY_HEADER}\n\nmQINBGV0ZXN0AQAAAAAAAAAAAAAA\n=abcd\n{PUBLIC_KEY_FOOTER}"
FAKE_PRIVATE = f"{PRIVATE_KEY_HEADER}\n\nlQdGBGV0ZXN0c2VjcmV0Ym9keQAA\n=wxyz\n{PRIVATE_KEY_FOOTER}"


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    if shutil.which("gpg") is None:
        pytest.skip("needs the gpg binary")
    made = make_test_keys(tmp_path_factory.getbasetemp() / "pgp-test-keys")
    yield made
    subprocess.run(["gpgconf", "--homedir", str(made.cli_home), "--kill", "all"], capture_output=True, check=False)


# ---------------------------------------------------------------------------------------------------------------------
# Armor validation
# ---------------------------------------------------------------------------------------------------------------------


def test_valid_keys_are_normalised():
    assert normalize_armored_key(FAKE_PUBLIC, "public") == FAKE_PUBLIC + "\n"
    messy = "\n\n  " + FAKE_PRIVATE.replace("\n", "\r\n") + "\r\n\t "
    assert normalize_armored_key(messy, "private") == FAKE_PRIVATE + "\n"
    assert normalize_armored_key(FAKE_PUBLIC.encode(), "public") == FAKE_PUBLIC + "\n"


def test_literal_backslash_n_from_json_extras_is_repaired():
    escaped = FAKE_PRIVATE.replace("\n", "\\n")
    assert "\n" not in escaped
    assert normalize_armored_key(escaped, "private") == FAKE_PRIVATE + "\n"
    assert normalize_armored_key(FAKE_PUBLIC.replace("\n", "\\r\\n"), "public") == FAKE_PUBLIC + "\n"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("mQINBGV0ZXN0AQAAAAAAAAAAAAAA", "public", "probably not ASCII armored"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE", "public", "gpg --armor --export <KEY-ID>"),
        ("garbage " * 20, "private", "gpg --armor --export-secret-keys"),
        (FAKE_PUBLIC[:-5], "public", "does not begin with"),
        ("   ", "private", "is empty"),
        (FAKE_PUBLIC, "private", "PUBLIC key block but a PRIVATE key is expected"),
        (FAKE_PRIVATE, "public", "PRIVATE key block but a PUBLIC key is expected"),
    ],
)
def test_bad_keys_say_what_to_fix(value, kind, expected):
    with pytest.raises(PgpKeyFormatError, match=r"ASCII armored|expected|is empty|--export") as err:
        normalize_armored_key(value, kind, name=f"{kind}_key")
    assert expected in str(err.value)
    assert "lQdGBGV0ZXN0c2VjcmV0Ym9keQAA" not in str(err.value)  # never echo key material


def test_binary_key_bytes_are_rejected_as_unarmored():
    with pytest.raises(PgpKeyFormatError, match="binary"):
        normalize_armored_key(b"\x99\x01\x8d\x04\xff\xfe", "private", name="private_key")
    with pytest.raises(PgpKeyFormatError, match="must be a string"):
        normalize_armored_key(12345, "public")  # type: ignore[arg-type]


def test_several_public_key_blocks_are_split():
    second = FAKE_PUBLIC.replace("AQAAAA", "BBBBBB")
    blocks = split_public_key_blocks(FAKE_PUBLIC + "\n" + second + "\n")
    assert blocks == [FAKE_PUBLIC + "\n", second + "\n"]
    assert split_public_key_blocks([FAKE_PUBLIC, second.encode()]) == blocks
    with pytest.raises(PgpKeyFormatError):
        split_public_key_blocks([FAKE_PUBLIC, FAKE_PRIVATE])


def test_cipher_validates_at_construction_and_repr_hides_keys():
    with pytest.raises(PgpKeyFormatError, match="private_key"):
        PgpCipher(private_key=FAKE_PUBLIC)
    cipher = PgpCipher(public_key=FAKE_PUBLIC, private_key=FAKE_PRIVATE, passphrase="hunter2-pass")
    assert "hunter2" not in repr(cipher) and "lQdG" not in repr(cipher)
    with pytest.raises(PgpKeyFormatError, match="no signer_public_keys"):
        cipher.verify_file(io.BytesIO(b"x"), b"sig")


@needs_gpg
def test_armored_but_corrupt_key_is_reported_by_gpg():
    with PgpKeyring() as ring, pytest.raises(PgpKeyFormatError, match="truncated or corrupted"):
        ring.import_key(FAKE_PRIVATE, "private", name="private_key")


def test_importing_the_modules_stays_cheap():
    code = (
        "import sys, airflow_provider_lytics.io.pgp, airflow_provider_lytics.hooks.pgp\n"
        "heavy = [m for m in ('gnupg', 'pandas', 'pyarrow', 'paramiko', 'asyncssh') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------------------------------------------------------------
# Channel
# ---------------------------------------------------------------------------------------------------------------------


def test_channel_is_bounded_and_blocks_the_producer():
    ch = _Channel(max_chunks=2)
    done = threading.Event()

    def produce():
        ch.write(b"a" * (5 * CHUNK_SIZE))  # five chunks, only two fit
        ch.close()
        done.set()

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    assert not done.wait(0.2)  # blocked: the channel never holds more than two chunks
    received = b""
    while chunk := ch.read(100_000):
        received += chunk
    t.join(5)
    assert done.is_set() and received == b"a" * (5 * CHUNK_SIZE)


def test_channel_hang_up_unblocks_producer_and_fail_raises_for_reader():
    ch = _Channel(max_chunks=1)
    errors = []

    def produce():
        try:
            ch.write(b"x" * (4 * CHUNK_SIZE))
        except BrokenPipeError as exc:
            errors.append(exc)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    ch.hang_up(RuntimeError("consumer went away"))
    t.join(5)
    assert not t.is_alive() and "consumer went away" in str(errors[0])
    ch2 = _Channel()
    ch2.write(b"data")
    ch2.fail(ValueError("gpg failed"))
    assert ch2.read(10) == b"data"
    with pytest.raises(ValueError, match="gpg failed"):
        ch2.read(10)


def test_channel_abort_runs_callbacks_and_reads_raise():
    ch = _Channel()
    calls = []
    ch.on_abort(lambda: calls.append(1))
    ch.write(b"buffered")
    ch.abort(RuntimeError("producer failed"))
    with pytest.raises(RuntimeError):
        ch.read(10)
    ch.on_abort(lambda: calls.append(2))  # registered after the abort: runs at once
    assert calls == [1, 2]


# ---------------------------------------------------------------------------------------------------------------------
# Connection form
# ---------------------------------------------------------------------------------------------------------------------


def test_conn_fields_are_declarative_and_masked_where_secret():
    for spec in CONN_FIELDS.values():
        assert spec["label"] and spec["description"]
        assert "null" in spec["schema"]["type"]
        assert spec["schema"].get("format") in (None, "multiline", "password")
    assert CONN_FIELDS["public_key"]["schema"]["format"] == "multiline"
    assert CONN_FIELDS["signing_passphrase"]["schema"]["format"] == "password"
    assert "passphrase" not in CONN_FIELDS  # the Password field is the passphrase box: one on the form
    masked_words = ("private_key", "passphrase", "secret", "password")
    for secret in ("private_key", "passphrase", "signing_private_key", "signing_passphrase"):
        assert any(w in secret for w in masked_words)
    assert not any(w in "public_key" for w in masked_words)
    behaviour = PgpHook.get_ui_field_behaviour()
    assert "host" in behaviour["hidden_fields"] and behaviour["relabeling"]["password"]
    assert PgpHook.conn_type == "pgp" and PgpHook.default_conn_name == "pgp_default"


# ---------------------------------------------------------------------------------------------------------------------
# PgpHook over AIRFLOW_CONN_PGP_DEFAULT
# ---------------------------------------------------------------------------------------------------------------------


def _set_conn(monkeypatch, password: str | None = None, **extra):
    conn = {"conn_type": "pgp", "extra": extra}
    if password is not None:
        conn["password"] = password
    monkeypatch.setenv("AIRFLOW_CONN_PGP_DEFAULT", json.dumps(conn))


@pytest.fixture
def masked(monkeypatch):
    seen: list[str] = []
    import airflow.providers.common.compat.sdk as sdk

    monkeypatch.setattr(sdk, "mask_secret", lambda value, *a, **k: seen.append(value))
    return seen


def test_hook_reads_keys_and_masks_secrets(monkeypatch, masked, keys):
    rsa = keys["rsa"]
    _set_conn(monkeypatch, password=PASSPHRASE, public_key=rsa.public, private_key=rsa.private, armor="true")
    hook = PgpHook()
    cipher = hook.get_cipher()
    assert cipher.private_key and cipher.public_key
    assert PASSPHRASE in masked and rsa.private in masked
    assert rsa.public not in masked
    assert hook.armor is True and hook.compress is True


def test_passphrase_extra_and_password_field_both_work_but_must_agree(monkeypatch, masked, keys, tmp_path):
    rsa = keys["rsa"]
    (tmp_path / "p.txt").write_bytes(b"hello\n")
    PgpCipher(public_key=rsa.public).encrypt_file(tmp_path / "p.txt", tmp_path / "c.gpg")
    for password, extra in (
        (PASSPHRASE, {}),
        (None, {"passphrase": PASSPHRASE}),
        (PASSPHRASE, {"passphrase": PASSPHRASE}),
    ):
        _set_conn(monkeypatch, password=password, private_key=rsa.private, **extra)
        PgpHook().decrypt_file(tmp_path / "c.gpg", tmp_path / "o.txt")
        assert (tmp_path / "o.txt").read_bytes() == b"hello\n"
    _set_conn(monkeypatch, password="one", private_key=rsa.private, passphrase="two")
    with pytest.raises(PgpConfigError, match="differ"):
        PgpHook().get_cipher()


def test_hook_without_keys_or_with_bad_flag_fails_clearly(monkeypatch, masked):
    _set_conn(monkeypatch)
    with pytest.raises(PgpConfigError, match="holds no keys"):
        PgpHook().get_cipher()
    _set_conn(monkeypatch, public_key=FAKE_PUBLIC, armor="maybe")
    with pytest.raises(PgpConfigError, match="armor"):
        PgpHook().get_cipher()


def test_hook_encrypts_with_connection_defaults(monkeypatch, masked, keys, tmp_path):
    ed = keys["ed"]
    # keys pasted into JSON with the newlines escaped twice (a literal backslash-n) still work
    _set_conn(monkeypatch, public_key=ed.public.replace("\n", "\\n"), private_key=ed.private, armor=True)
    (tmp_path / "p.txt").write_bytes(b"rows\n" * 100)
    hook = PgpHook()
    hook.encrypt_file(tmp_path / "p.txt", tmp_path / "c.asc")
    assert (tmp_path / "c.asc").read_bytes().startswith(b"-----BEGIN PGP MESSAGE-----")
    hook.encrypt_file(tmp_path / "p.txt", tmp_path / "c.gpg", armor=False)
    assert not (tmp_path / "c.gpg").read_bytes().startswith(b"-----BEGIN")
    out = io.BytesIO()
    with open(tmp_path / "c.gpg", "rb") as fh, hook.decrypted_reader(fh) as r:
        out.write(r.read())
    assert out.getvalue() == b"rows\n" * 100


def test_test_connection_ok_for_a_matching_pair(monkeypatch, masked, keys):
    rsa = keys["rsa"]
    _set_conn(monkeypatch, password=PASSPHRASE, public_key=rsa.public, private_key=rsa.private)
    ok, message = PgpHook().test_connection()
    assert ok, message
    assert "pair" in message and rsa.fingerprint[-16:] in message


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("mismatch", "PgpKeyMismatchError: public_key and private_key are not a key pair"),
        ("wrong_passphrase", "PgpPassphraseError: wrong passphrase"),
        ("missing_passphrase", "PgpPassphraseError: the private key is passphrase protected but no passphrase"),
        ("unarmored", "PgpKeyFormatError: private_key does not begin with"),
        ("swapped", "PgpKeyFormatError: public_key holds a PGP PRIVATE key block"),
        ("corrupt", "PgpKeyFormatError: public_key is armored but gpg could not import it"),
    ],
)
def test_test_connection_failures_never_raise_nor_echo_secrets(monkeypatch, masked, keys, case, expected):
    rsa, ed = keys["rsa"], keys["ed"]
    conn = {
        "mismatch": {"public_key": ed.public, "private_key": rsa.private, "password": PASSPHRASE},
        "wrong_passphrase": {"private_key": rsa.private, "password": PASSPHRASE + "x"},
        "missing_passphrase": {"public_key": rsa.public, "private_key": rsa.private},
        "unarmored": {"private_key": "\n".join(rsa.private.splitlines()[2:-2])},
        "swapped": {"public_key": rsa.private, "private_key": rsa.private, "password": PASSPHRASE},
        "corrupt": {"public_key": FAKE_PUBLIC},
    }[case]
    password = conn.pop("password", None)
    _set_conn(monkeypatch, password=password, **conn)
    ok, message = PgpHook().test_connection()
    assert not ok
    assert message.startswith(expected), message
    assert PASSPHRASE not in message
    for line in rsa.private.splitlines()[3:6] + ed.public.splitlines()[3:6]:
        assert line not in message


def test_test_connection_reports_missing_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_PGP_DEFAULT", raising=False)
    ok, message = PgpHook("pgp_nope_does_not_exist").test_connection()
    assert not ok and "pgp_nope_does_not_exist" in message

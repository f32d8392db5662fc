"""Exports over real HTTP (emulator) to local files and SFTP: every format, compression and PGP (gpg CLI decrypts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_provider_lytics.exports.destinations import LocalDestination, SftpDestination
from airflow_provider_lytics.exports.outputs import EncryptionOptions, FormatOptions
from airflow_provider_lytics.exports.runner import AudienceExport, ExportSpec
from tests.exports.helpers import FIELDS, fast_hook, make_recipient_key, rows_of, seed, stop_agent, user
from tests.integration.sftp_fixtures import *  # noqa: F403
from tests.integration.sftp_fixtures import use_connection

N = 230


@pytest.fixture
def audience(emulator, lytics_conn_env):
    seed(emulator, [user(i) for i in range(N)] + [user(N + i, status="inactive") for i in range(20)])
    return emulator


@pytest.fixture(scope="module")
def recipient(tmp_path_factory):
    """(armored public key, gpg home holding the private key) for the gpg CLI side."""
    if shutil.which("gpg") is None:
        pytest.skip("needs the gpg binary")
    public, home = make_recipient_key(tmp_path_factory.mktemp("export-pgp"))
    yield public, home
    stop_agent(home)


def _expected_ids() -> set[str]:
    return {f"u{i:06d}" for i in range(N)}


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet"])
@pytest.mark.parametrize("compression", ["none", "gzip", "zip"])
def test_each_format_and_compression_round_trips(audience, tmp_path, fmt, compression):
    spec = ExportSpec(segment="actives", fields=FIELDS, fmt=FormatOptions(fmt=fmt, compression=compression))
    result = AudienceExport(spec, fast_hook(), LocalDestination(str(tmp_path))).run()
    (f,) = result.files
    assert f.rows == N and result.rows_written == N and result.size_at_start == N
    rows = rows_of(Path(f.path))
    assert {r["user_id"] for r in rows} == _expected_ids() and len(rows) == N
    sample = next(r for r in rows if r["user_id"] == "u000001")
    expected_interests = {"csv": "a|b", "ndjson": ["a", "b"], "parquet": '["a","b"]'}[fmt]
    assert sample["interests"] == expected_interests and sample["email"] == "user1@example.com"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_csv_options_delimiter_no_header_and_join(audience, tmp_path):
    fmt = FormatOptions(fmt="csv", delimiter=";", header=False, join="+")
    result = AudienceExport(
        ExportSpec(segment="actives", fields=FIELDS, fmt=fmt), fast_hook(), LocalDestination(str(tmp_path))
    ).run()
    lines = Path(result.files[0].path).read_text().splitlines()
    assert len(lines) == N and "u000001;user1@example.com;Name1;a+b" in lines


@pytest.mark.parametrize("armor", [False, True])
def test_pgp_encrypted_gzip_decrypts_with_gpg_cli(audience, tmp_path, recipient, armor):
    from airflow_provider_lytics.io.pgp import PgpCipher

    cipher = PgpCipher(public_key=recipient[0])
    enc = EncryptionOptions(pgp=cipher, armor=armor, compress=False)
    spec = ExportSpec(segment="actives", fields=FIELDS, fmt=FormatOptions(compression="gzip"), encryption=enc)
    result = AudienceExport(spec, fast_hook(), LocalDestination(str(tmp_path))).run()
    path = Path(result.files[0].path)
    assert path.name.endswith(".csv.gz.asc" if armor else ".csv.gz.gpg")
    if armor:
        assert path.read_bytes().startswith(b"-----BEGIN PGP MESSAGE-----")
    rows = rows_of(path, gpg_home=recipient[1])
    assert {r["user_id"] for r in rows} == _expected_ids()


def test_sftp_destination_with_pgp_split_and_manifest(
    audience, tmp_path, recipient, emulator_target_fixture, monkeypatch
):
    import json

    from airflow_provider_lytics.io.pgp import PgpCipher

    target = emulator_target_fixture
    use_connection(monkeypatch, "export_sftp", target.connection())
    enc = EncryptionOptions(pgp=PgpCipher(public_key=recipient[0]), compress=False)
    spec = ExportSpec(
        segment="actives", fields=FIELDS, fmt=FormatOptions(compression="gzip"), encryption=enc,
        split_rows=100, manifest=True, file_name="users_{TIMESTAMP}_{PART}",
    )  # fmt: skip
    dest = SftpDestination("export_sftp", target.remote("out"))
    try:
        result = AudienceExport(spec, fast_hook(), dest).run()
    finally:
        dest.close()
    assert [f.rows for f in result.files] == [100, 100, 30]
    names = sorted(p.name for p in target.local("out").iterdir())
    assert not [n for n in names if n.endswith(".part")]
    seen: list[str] = []
    for f in result.files:
        local = target.local("out") / f.name
        assert local.stat().st_size == f.bytes
        seen += [r["user_id"] for r in rows_of(local, gpg_home=recipient[1])]
    assert sorted(seen) == sorted(_expected_ids())
    manifest = json.loads((target.local("out") / Path(result.manifest).name).read_text())
    assert manifest["rows_written"] == N and [m["sha256"] for m in manifest["files"]] == [
        f.sha256 for f in result.files
    ]


def test_split_bytes_and_max_members_sample(audience, tmp_path):
    spec = ExportSpec(segment="actives", fields=FIELDS, fmt=FormatOptions(fmt="ndjson"), split_bytes=4096)
    result = AudienceExport(spec, fast_hook(), LocalDestination(str(tmp_path))).run()
    assert len(result.files) > 2 and sum(f.rows for f in result.files) == N
    sample = AudienceExport(
        ExportSpec(segment="actives", fields=FIELDS, max_members=15, file_name="sample"), fast_hook(),
        LocalDestination(str(tmp_path / "s")),
    ).run()  # fmt: skip
    assert sample.rows_written == 15 and len(rows_of(Path(sample.files[0].path))) == 15


def test_adhoc_filter_ql_and_membership_column(audience, tmp_path):
    store = audience.backend.store
    store.segments.create(
        {"segment_ql": 'FILTER first_name = "Name3" FROM user ALIAS threes'}, None, rename_taken_slug=False
    )
    spec = ExportSpec(
        filter_ql='FILTER status = "active" FROM user', fields=["user_id"], membership_segments=["threes", "actives"],
        fmt=FormatOptions(fmt="ndjson"),
    )  # fmt: skip
    result = AudienceExport(spec, fast_hook(), LocalDestination(str(tmp_path))).run()
    rows = {r["user_id"]: r for r in rows_of(Path(result.files[0].path))}
    assert len(rows) == N and "adhoc" in result.files[0].name
    assert rows["u000003"]["segments"] == ["threes", "actives"] and rows["u000004"]["segments"] == ["actives"]


def test_bad_arguments_say_what_to_fix(audience, tmp_path):
    from airflow_provider_lytics.exports.errors import ExportConfigError

    with pytest.raises(ExportConfigError, match="needs fields"):
        AudienceExport(ExportSpec(segment="actives"), fast_hook(), LocalDestination(str(tmp_path)))
    with pytest.raises(ExportConfigError, match="unknown placeholder"):
        AudienceExport(
            ExportSpec(segment="actives", fields=FIELDS, file_name="x_{DATE}"),
            fast_hook(),
            LocalDestination(str(tmp_path)),
        )
    with pytest.raises(ExportConfigError, match="exactly one"):
        AudienceExport(ExportSpec(fields=FIELDS), fast_hook(), LocalDestination(str(tmp_path)))

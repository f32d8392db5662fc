"""Send export files as email attachments through an Airflow SMTP connection (the CSV Email Export pattern).

Connection (type ``smtp``, as the Airflow SMTP provider reads it): Host, Port, Login/Password (optional), extras
``from_email``, ``disable_ssl`` (default false: implicit TLS, port 465), ``disable_tls`` (default false: STARTTLS
when not using implicit TLS) and ``timeout`` (seconds, default 30).
"""

from __future__ import annotations

import mimetypes
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.exports.errors import ExportConfigError, ExportError

if TYPE_CHECKING:
    from airflow_provider_lytics.exports.destinations import EmailSettings


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def send_export_email(settings: EmailSettings, files: list[Path]) -> list[str]:
    """Send one email with every file attached; returns the recipients. Refuses attachments over ``max_bytes``."""
    from airflow.providers.common.compat.sdk import BaseHook

    total = sum(f.stat().st_size for f in files)
    if total > settings.max_bytes:
        raise ExportConfigError(
            f"the export files total {total} bytes, over the email limit of {settings.max_bytes} bytes: use "
            "compression='gzip', split the export, or send it to SFTP/object storage instead"
        )
    conn = BaseHook.get_connection(settings.smtp_conn_id)
    extra = conn.extra_dejson or {}
    use_ssl = not _flag(extra.get("disable_ssl", False))
    use_tls = not use_ssl and not _flag(extra.get("disable_tls", False))
    port = conn.port or (465 if use_ssl else 587 if use_tls else 25)
    sender = extra.get("from_email") or conn.login
    if not conn.host:
        raise ExportConfigError(f"SMTP connection {settings.smtp_conn_id!r} has no Host")
    if not sender:
        raise ExportConfigError(f"SMTP connection {settings.smtp_conn_id!r} needs the 'from_email' extra or a Login")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(settings.to)
    if settings.cc:
        msg["Cc"] = ", ".join(settings.cc)
    msg["Subject"] = settings.subject
    msg.set_content(settings.body)
    for path in files:
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.name.endswith((".gpg", ".asc", ".gz", ".zip", ".parquet")):
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    timeout = float(extra.get("timeout") or 30)
    recipients = [*settings.to, *settings.cc]
    try:
        if use_ssl:
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                conn.host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(conn.host, port, timeout=timeout)
        with server:
            if use_tls:
                server.starttls(context=ssl.create_default_context())
            if conn.login and conn.password:
                server.login(conn.login, conn.password)
            refused = server.send_message(msg, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise ExportError(
            f"SMTP login to {conn.host}:{port} was refused ({exc.smtp_code}): check Login/Password"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ExportError(
            f"sending the export email through {conn.host}:{port} failed: {type(exc).__name__}: {exc}"
        ) from None
    if refused:
        raise ExportError(f"the SMTP server refused recipient(s) {sorted(refused)}")
    return recipients

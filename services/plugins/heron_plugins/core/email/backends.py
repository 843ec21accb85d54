"""Where mail goes: an SMTP server (aiosmtplib), SendGrid's HTTP API (httpx), or, in
development, a folder (and the log).

Each backend raises `Retry` for what may pass (a server away, a timeout, 429 or 5xx) and
`Refused` for what will not (a rejected address, bad credentials): the queue retries the one
and gives up on the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger("heron.plugins.email")


class Retry(Exception):
    """The message could not be sent now; it may go later."""


class Refused(Exception):
    """The provider refused the message for good."""


@dataclass(frozen=True)
class Message:
    id: str
    to: str
    subject: str
    text: str
    html: str


class Backend(Protocol):
    async def send(self, message: Message) -> None: ...

    async def close(self) -> None: ...


def mime(message: Message, sender: str, sender_name: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = formataddr((sender_name, sender)) if sender_name else sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    domain = sender.rsplit("@", 1)[-1] or "heron.local"
    mail["Message-ID"] = make_msgid(idstring=message.id.replace("-", ""), domain=domain)
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


class DevelopmentBackend:
    """Writes each message to `<folder>/<id>.eml` and its text to the log: for a machine
    without a mail server (`make up`), where the log is how a developer reads the code."""

    def __init__(self, folder: Path, sender: str, sender_name: str) -> None:
        self.folder = folder
        self.sender, self.sender_name = sender, sender_name

    async def send(self, message: Message) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{message.id}.eml"
        try:
            path.write_bytes(bytes(mime(message, self.sender, self.sender_name)))
        except OSError as exc:
            raise Retry(f"cannot write {path}: {exc.strerror}") from None
        # This backend's delivery is the log: it shows the message as it would arrive.
        logger.warning(
            "mail written (development backend: not sent)",
            extra={"to": message.to, "subject": message.subject, "file": str(path)},
        )
        print(f"\n--- mail to {message.to}: {message.subject}\n{message.text}---", flush=True)

    async def close(self) -> None:
        return None


class SmtpBackend:
    def __init__(self, settings: dict[str, Any], timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout

    async def send(self, message: Message) -> None:
        import aiosmtplib

        s = self.settings
        security = s.get("smtp_security", "starttls")
        mail = mime(message, s["from_address"], s.get("from_name", ""))
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.get("smtp_host", "127.0.0.1"),
                port=int(s.get("smtp_port", 587)),
                username=s.get("smtp_username") or None,
                password=s.get("smtp_password") or None,
                use_tls=security == "tls",
                start_tls=True if security == "starttls" else False,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise Refused(f"the server refused the address: {exc}") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise Retry(f"the server refused the credentials ({exc.code})") from None
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise Refused(f"the server refused it ({exc.code} {exc.message})") from None
            raise Retry(f"the server answered {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise Retry(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        return None


class SendGridBackend:
    """SendGrid's v3 `mail/send` API; `sendgrid_api_url` may point elsewhere (a test
    receiver, a regional endpoint)."""

    def __init__(self, settings: dict[str, Any], timeout: float) -> None:
        import httpx

        self.settings = settings
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def send(self, message: Message) -> None:
        import httpx

        s = self.settings
        sender: dict[str, str] = {"email": s["from_address"]}
        if s.get("from_name"):
            sender["name"] = s["from_name"]
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        body = {
            "personalizations": [{"to": [{"email": message.to}]}],
            "from": sender,
            "subject": message.subject,
            "content": content,
            "custom_args": {"heron_message_id": message.id},
        }
        url = s.get("sendgrid_api_url", "https://api.sendgrid.com").rstrip("/") + "/v3/mail/send"
        try:
            reply = await self.client.post(
                url, json=body, headers={"authorization": f"Bearer {s.get('sendgrid_api_key', '')}"}
            )
        except httpx.HTTPError as exc:
            raise Retry(f"{type(exc).__name__}: {exc}") from None
        if reply.status_code in (200, 202):
            return
        if reply.status_code in (401, 403, 429) or reply.status_code >= 500:
            # A wrong key is fixed by an operator: keep the mail until then.
            raise Retry(f"SendGrid answered {reply.status_code}")
        raise Refused(f"SendGrid refused the message ({reply.status_code}: {reply.text[:200]})")

    async def close(self) -> None:
        await self.client.aclose()


def backend_for(settings: dict[str, Any], data_dir: Path) -> Backend:
    timeout = float(settings.get("timeout_seconds", 10))
    kind = settings.get("backend", "development")
    if kind == "smtp":
        return SmtpBackend(settings, timeout)
    if kind == "sendgrid":
        return SendGridBackend(settings, timeout)
    folder = Path(settings.get("development_folder") or data_dir / "mail")
    return DevelopmentBackend(folder, settings["from_address"], settings.get("from_name", ""))

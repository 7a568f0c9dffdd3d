"""Messages composed with the `emails` package and sent over SMTP (the OPSAUDIT_SMTP_* settings).

Every failure becomes a MailError whose text names the server and the reason and never holds
the password, so it can be stored in the outbox and shown to a person.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import socket
import ssl
from email.utils import parseaddr
from pathlib import Path
from types import TracebackType

import emails
from emails.backend.smtp import SMTPBackend
from emails.backend.smtp.client import SMTPClientWithResponse, SMTPClientWithResponse_SSL

from opsaudit.errors import ConfigError, OpsauditError
from opsaudit.reports.outbox import StoredMail, is_address
from opsaudit.settings import Settings

SMTPS_PORT = 465


class MailError(OpsauditError):
    """A message could not be composed or sent.

    `connection`: the server could not be used at all (unreachable, TLS, login, sender refused),
    so no other message can go either. `permanent`: the server refused this message for good
    (a 5xx reply), so retrying it cannot help.
    """

    def __init__(self, message: str, *, connection: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.connection = connection
        self.permanent = permanent


def message_id(dedupe_key: str, domain: str) -> str:
    """A Message-ID that stays the same for every attempt, so a receiver can spot a repeat."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    return f"<opsaudit.{digest}@{domain}>"


def compose(mail: StoredMail, sender: str) -> emails.Message:
    """The message with its text and HTML alternatives and its attachments, read from disk now."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = emails.Message(
        subject=mail.subject, mail_from=parseaddr(sender), text=mail.body_text, html=mail.body_html,
        mail_to=[(address.name or "", address.email) for address in mail.recipients],
        message_id=message_id(mail.dedupe_key, domain),
        # RFC 3834: out-of-office robots do not answer an automatic message.
        headers={"Auto-Submitted": "auto-generated", "X-Opsaudit-Kind": mail.kind})
    for path in mail.attachments:
        message.attach(data=_read_attachment(path), filename=path.name)
    return message


def _read_attachment(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MailError(f"attachment {path} is missing") from None
    except OSError as exc:
        raise MailError(f"attachment {path} cannot be read: {exc.strerror or exc}") from None


class _VerifyingClient(SMTPClientWithResponse):
    """emails' SMTP client; its STARTTLS checks the server's certificate (smtplib's default does not)."""

    def starttls(self, keyfile=None, certfile=None, context=None):
        return super().starttls(context=self.parent.tls_context)


class _VerifyingSSLClient(SMTPClientWithResponse_SSL):
    """emails' implicit-TLS client, connecting once with a certificate-checking context.

    emails' own class connects twice (SMTP_SSL.__init__, then SMTP.__init__), and with
    smtplib's unverified context; this sets what SMTP_SSL.__init__ would and connects once.
    """

    def __init__(self, **kwargs):
        self.keyfile = self.certfile = None
        self.context = kwargs["parent"].tls_context
        SMTPClientWithResponse.__init__(self, **kwargs)


class _Backend(SMTPBackend):
    connection_cls = _VerifyingClient
    connection_ssl_cls = _VerifyingSSLClient

    def __init__(self, tls_context: ssl.SSLContext, **kwargs) -> None:
        self.tls_context = tls_context
        super().__init__(**kwargs)


class SmtpTransport:
    """One SMTP connection, opened on the first send and reused for the messages after it."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ConfigError("environment: OPSAUDIT_SMTP_HOST is not set")
        if settings.smtp_ssl and settings.smtp_starttls:
            raise ConfigError("environment: OPSAUDIT_SMTP_SSL and OPSAUDIT_SMTP_STARTTLS exclude each other: "
                              "SSL is TLS from the start (port 465), STARTTLS upgrades a plain connection (587)")
        if not is_address(parseaddr(settings.smtp_from)[1]):
            raise ConfigError(f"environment: OPSAUDIT_SMTP_FROM: {settings.smtp_from!r} has no e-mail address")
        self.sender = settings.smtp_from
        self.host = settings.smtp_host
        # An SSL server listens on 465 unless the port is given.
        explicit_port = "smtp_port" in settings.model_fields_set
        self.port = settings.smtp_port if explicit_port or not settings.smtp_ssl else SMTPS_PORT
        self.user = settings.smtp_user
        self._password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        self._backend = _Backend(
            _tls_context(settings), host=self.host, port=self.port, ssl=settings.smtp_ssl,
            tls=settings.smtp_starttls, user=self.user, password=self._password, timeout=settings.smtp_timeout,
            fail_silently=False)

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, mail: StoredMail) -> dict[str, str]:
        """Compose and send mail; returns the recipients the server refused (the others got it).
        Raises MailError when the server did not take the message."""
        message = compose(mail, self.sender)
        try:
            response = message.send(smtp=self._backend)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # the next message starts on a fresh connection
            error = _describe(exc, self.server, self.user)
            raise MailError(self._scrub(str(error)), connection=error.connection, permanent=error.permanent) from None
        return {address: self._scrub(_reply(code, text))
                for address, (code, text) in sorted(response.refused_recipients.items())}

    def close(self) -> None:
        """Say goodbye to the server; a connection that already broke needs nothing more."""
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self._backend.close()

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _scrub(self, text: str) -> str:
        """text without the password, should a server ever echo it."""
        return text.replace(self._password, "***") if self._password else text


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """A context that checks the certificate and the host name, against the system's CAs or
    OPSAUDIT_SMTP_CA_FILE."""
    ca_file = settings.smtp_ca_file
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file.expanduser()))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"environment: OPSAUDIT_SMTP_CA_FILE: {ca_file}: cannot be read as PEM "
                          f"certificates: {getattr(exc, 'strerror', None) or exc}") from None


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(message.split())}"


def _describe(exc: BaseException, server: str, user: str | None) -> MailError:
    """A MailError naming the server and the reason for an smtplib or socket failure."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{address}: {_reply(code, text)}"
                            for address, (code, text) in sorted(exc.recipients.items()))
        permanent = all(code >= 500 for code, _ in exc.recipients.values())
        return MailError(f"{server}: every recipient was refused: {replies}", permanent=permanent)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return MailError(f"{server}: sender {exc.sender} refused: {_reply(exc.smtp_code, exc.smtp_error)}",
                         connection=True)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return MailError(f"{server}: login as {user} refused: {_reply(exc.smtp_code, exc.smtp_error)}",
                         connection=True)
    if isinstance(exc, smtplib.SMTPDataError):
        return MailError(f"{server}: message refused: {_reply(exc.smtp_code, exc.smtp_error)}",
                         permanent=exc.smtp_code >= 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError(f"{server}: {exc} (check OPSAUDIT_SMTP_STARTTLS and OPSAUDIT_SMTP_USER)", connection=True)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return MailError(f"{server}: the connection broke off: {exc}", connection=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return MailError(f"{server}: {_reply(exc.smtp_code, exc.smtp_error)}", connection=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailError(f"{server}: the server's TLS certificate is not trusted: {exc.verify_message} "
                         "(OPSAUDIT_SMTP_CA_FILE can name the CA that signed it)", connection=True)
    if isinstance(exc, ssl.SSLError):
        return MailError(f"{server}: TLS failed: {exc.reason or exc}", connection=True)
    if isinstance(exc, socket.timeout | TimeoutError):
        return MailError(f"{server}: the server did not answer in time", connection=True)
    if isinstance(exc, OSError):
        return MailError(f"{server}: cannot connect: {exc.strerror or exc}", connection=True)
    return MailError(f"{server}: {type(exc).__name__}: {exc}", connection=True)

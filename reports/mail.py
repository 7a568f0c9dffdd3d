"""Messages composed with the `emails` package and sent over SMTP (the OPSAUDIT_SMTP_* settings).

Every failure becomes a MailError whose text names the server and the reason and never holds
the password, so it can be stored in the outbox and shown to a person. The SMTP dialogue is
smtplib's, driven here rather than by `emails`' backend: that backend sends a message a second
time when the connection breaks, even after the server may have taken it (DATA), which mailed
duplicates; here a message goes at most once per attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.mime.base import MIMEBase
from email.utils import parseaddr
from pathlib import Path
from types import TracebackType

import emails
from emails.store import BaseFile
from emails.utils import DNS_NAME

from opsaudit.errors import ConfigError, OpsauditError, os_reason, setting_error
from opsaudit.i18n import Message, text
from opsaudit.reports.outbox import Address, StoredMail, is_address
from opsaudit.settings import Settings

SMTPS_PORT = 465
SUBMISSION_PORT = 587  # where a server offers STARTTLS
ACCEPTED = (250, 251)  # RCPT replies that take a recipient


class MailError(OpsauditError):
    """A message could not be composed or sent.

    `connection`: the server could not be used at all (unreachable, TLS, login, sender refused),
    so no other message can go either. `permanent`: the server refused this message for good
    (a 5xx reply), or it can never be composed, so retrying it cannot help. `unknown`: the
    connection broke after the message was handed over, so the server may have it. `refused`:
    the recipients the server refused before the failure (address: reply).
    """

    def __init__(self, message: str, *, connection: bool = False, permanent: bool = False, unknown: bool = False,
                 refused: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.connection = connection
        self.permanent = permanent
        self.unknown = unknown
        self.refused = refused or {}


def message_id(dedupe_key: str, domain: str) -> str:
    """A Message-ID that stays the same for every attempt, so a receiver can spot a repeat."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    return f"<opsaudit.{digest}@{domain}>"


class _Attachment(BaseFile):
    """An attached file; one of text that is UTF-8 (the HTML report, the CSV) says so in its
    Content-Type, or a mail reader guesses the charset (GBK on Chinese Windows) and garbles it."""

    @property
    def mime(self) -> MIMEBase | None:
        part = super().mime
        if part is not None and part.get_content_maintype() == "text" and part.get_param("charset") is None \
                and _is_utf8(self.data):
            part.set_param("charset", "utf-8")
        return part


class _Message(emails.Message):
    attachment_cls = _Attachment


def _is_utf8(data: bytes | str | None) -> bool:
    if isinstance(data, str):
        return True
    try:
        (data or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def compose(mail: StoredMail, sender: str, language: str) -> emails.Message:
    """The message with its text and HTML alternatives and its attachments, read from disk now.
    A MailError (permanent, in `language`) when a recipient's name cannot be a header."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = _Message(
        subject=mail.subject, mail_from=parseaddr(sender), text=mail.body_text, html=mail.body_html,
        mail_to=[(_display_name(address, language), address.email) for address in mail.recipients],
        message_id=message_id(mail.dedupe_key, domain),
        # RFC 3834: out-of-office robots do not answer an automatic message.
        headers={"Auto-Submitted": "auto-generated", "X-Opsaudit-Kind": mail.kind})
    for path in mail.attachments:
        message.attach(data=_read_attachment(path), filename=path.name)
    return message


def _display_name(address: Address, language: str) -> str:
    """The name as the To header shows it, without the spaces or carriage return around it (a
    staff table exported from Windows ends names with CR). A line break inside the name would
    let it add headers of its own: that message is refused, the others still go."""
    name = (address.name or "").strip()
    if "\r" in name or "\n" in name:
        shown = name.replace("\r", "\\r").replace("\n", "\\n")
        raise MailError(text("outbox.reason.name_line_break", language, email=address.email, name=shown),
                        permanent=True)
    return name


def _read_attachment(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MailError(f"attachment {path} is missing") from None
    except OSError as exc:
        raise MailError(f"attachment {path} cannot be read: {exc.strerror or exc}") from None


@dataclass
class _Transaction:
    """One message's MAIL, RCPT and DATA on a connection, and what the server said so far."""

    refused: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    handed_over: bool = False  # DATA began: from here on the server may have the message

    def run(self, client: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> None:
        """Send data; raises smtplib's errors as smtplib.sendmail does, and keeps the refusals."""
        client.ehlo_or_helo_if_needed()
        options = [f"SIZE={len(data)}"] if client.does_esmtp and client.has_extn("size") else []
        code, reply = client.mail(sender, options)
        if code != 250:
            _reset(client)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        for address in recipients:
            code, reply = client.rcpt(address)
            if code not in ACCEPTED:
                self.refused[address] = (code, reply)
        if len(self.refused) == len(recipients):
            _reset(client)
            raise smtplib.SMTPRecipientsRefused(dict(self.refused))
        self.handed_over = True
        code, reply = client.data(data)
        if code != 250:
            _reset(client)
            raise smtplib.SMTPDataError(code, reply)


def _reset(client: smtplib.SMTP) -> None:
    """End a refused transaction; a connection that broke meanwhile needs nothing more."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.rset()


class SmtpTransport:
    """One SMTP connection, opened on the first send and reused for the messages after it."""

    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise ConfigError(Message.of("error.mail.no_host", setting="OPSAUDIT_SMTP_HOST"))
        if settings.smtp_ssl and settings.smtp_starttls:
            raise ConfigError(Message.of("error.mail.ssl_and_starttls", ssl="OPSAUDIT_SMTP_SSL",
                                         starttls="OPSAUDIT_SMTP_STARTTLS", ssl_name="SSL", ssl_port=SMTPS_PORT,
                                         starttls_name="STARTTLS", starttls_port=SUBMISSION_PORT))
        name, address = parseaddr(settings.smtp_from)
        if not is_address(address) or "\r" in name or "\n" in name:
            raise setting_error("OPSAUDIT_SMTP_FROM", Message.of("error.mail.no_address", value=settings.smtp_from))
        self.sender = settings.smtp_from
        self.language = settings.language
        self.host = settings.smtp_host
        # An SSL server listens on 465 unless the port is given.
        explicit_port = "smtp_port" in settings.model_fields_set
        self.port = settings.smtp_port if explicit_port or not settings.smtp_ssl else SMTPS_PORT
        self.user = settings.smtp_user
        self._password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        self._ssl, self._starttls, self._timeout = settings.smtp_ssl, settings.smtp_starttls, settings.smtp_timeout
        self._tls = _tls_context(settings)
        self._client: smtplib.SMTP | None = None

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, mail: StoredMail) -> dict[str, str]:
        """Compose and send mail, once, to its recipients the server has not refused before;
        returns the recipients it refused now (the others got it). Raises MailError when the
        server did not take the message, or may have taken it when the connection broke."""
        data = compose(mail, self.sender, self.language).as_bytes()
        recipients = [address.email for address in mail.recipients if address.refused is None]
        transaction = _Transaction()
        try:
            self._send(transaction, recipients, data)
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # the next message starts on a fresh connection
            raise self._error(exc, transaction) from None
        return self._refused(transaction)

    def _send(self, transaction: _Transaction, recipients: list[str], data: bytes) -> None:
        reused = self._client is not None
        try:
            transaction.run(self._connection(), parseaddr(self.sender)[1], recipients, data)
        except smtplib.SMTPServerDisconnected:
            if transaction.handed_over or not reused:
                raise
            # The server closed the connection while it sat idle since the last message, before
            # this one began: nothing of it arrived, so it goes once, on a new connection.
            self.close()
            transaction.refused.clear()
            transaction.run(self._connection(), parseaddr(self.sender)[1], recipients, data)

    def _connection(self) -> smtplib.SMTP:
        """The open connection, or a new one: TLS checked, logged in."""
        if self._client is not None:
            return self._client
        local = DNS_NAME.get_fqdn()  # looked up once per process, not at every connection
        if self._ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, local_hostname=local,
                                                    timeout=self._timeout, context=self._tls)
        else:
            client = smtplib.SMTP(self.host, self.port, local_hostname=local, timeout=self._timeout)
        try:
            if self._starttls:
                client.starttls(context=self._tls)
            if self.user:
                client.login(self.user, self._password or "")
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def _error(self, exc: BaseException, transaction: _Transaction) -> MailError:
        """The MailError for a failed send, with the password scrubbed and the refusals so far."""
        refused = self._refused(transaction)
        if transaction.handed_over and isinstance(exc, smtplib.SMTPServerDisconnected):
            return MailError(text("outbox.reason.outcome_unknown", self.language, server=self.server),
                             unknown=True, refused=refused)
        error = _describe(exc, self.server, self.user)
        return MailError(self._scrub(str(error)), connection=error.connection, permanent=error.permanent,
                         refused=refused)

    def _refused(self, transaction: _Transaction) -> dict[str, str]:
        return {address: self._scrub(_reply(code, reply)) for address, (code, reply) in sorted(
            transaction.refused.items())}

    def close(self) -> None:
        """Say goodbye to the server; a connection that already broke needs nothing more."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _scrub(self, said: str) -> str:
        """What the server said, without the password should it ever echo it."""
        return said.replace(self._password, "***") if self._password else said


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """A context that checks the certificate and the host name, against the system's CAs or
    OPSAUDIT_SMTP_CA_FILE."""
    ca_file = settings.smtp_ca_file
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file.expanduser()))
    except OSError as exc:  # ssl.SSLError is one too
        raise setting_error("OPSAUDIT_SMTP_CA_FILE", Message.of("error.mail.ca_file", path=str(ca_file), format="PEM",
                                                                reason=_ca_reason(exc))) from None


def _ca_reason(error: OSError) -> Message | str:
    """Why the CA file is no use: OpenSSL's words for a file of no certificates, else why the
    file cannot be read, in the reader's language where it can be."""
    if isinstance(error, ssl.SSLError):
        return error.strerror or str(error)
    if isinstance(error, FileNotFoundError):
        return Message.of("error.file.absent")
    if isinstance(error, IsADirectoryError):
        return Message.of("error.file.is_folder")
    return os_reason(error)


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

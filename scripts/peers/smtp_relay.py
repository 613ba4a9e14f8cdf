"""Loopback SMTP server for Footnote's email tests: accepts mail for the local domains and hands it
to Dovecot over LMTP, so that what an SMTP client sends shows up in the recipient's IMAP INBOX.

Started by scripts/peers/email.sh inside a venv that has aiosmtpd. Not for production: no TLS,
AUTH is optional (and checked against one shared password when a client uses it).

    python smtp_relay.py --listen 127.0.0.1:32525 --lmtp 127.0.0.1:32424 \
        --domains localhost --password peer-password
"""

import argparse
import asyncio
import logging
import signal
import smtplib

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LOG = logging.getLogger("footnote-smtp-relay")


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


class SharedPassword:
    """AUTH PLAIN/LOGIN: any local user, one password (the test peer's)."""

    def __init__(self, password):
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            return AuthResult(success=auth_data.password == self.password)
        return AuthResult(success=False, handled=False)


class ToLmtp:
    """Refuses foreign domains at RCPT (no open relay) and delivers DATA over LMTP."""

    def __init__(self, lmtp, domains):
        self.lmtp = lmtp
        self.domains = domains

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.rpartition("@")[2].lower() not in self.domains:
            return "554 5.7.1 relaying denied: not a local domain"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 recipient ok"

    def _deliver(self, sender, recipients, data):
        with smtplib.LMTP(*self.lmtp, timeout=30) as lmtp:
            lmtp.ehlo("footnote-smtp-relay")
            return lmtp.sendmail(sender, recipients, data)

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        try:
            refused = await loop.run_in_executor(
                None, self._deliver, envelope.mail_from or "<>", list(envelope.rcpt_tos),
                envelope.original_content)
        except smtplib.SMTPException as err:
            LOG.error("lmtp delivery failed: %s", err)
            return "451 4.3.0 delivery to the mailbox failed, try again"
        if refused:
            LOG.warning("lmtp refused some recipients: %s", refused)
            return "451 4.3.0 delivery failed for some recipients"
        LOG.info("delivered %d bytes from %s to %s", len(envelope.original_content),
                 envelope.mail_from, ",".join(envelope.rcpt_tos))
        return "250 2.0.0 delivered"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=host_port, required=True)
    parser.add_argument("--lmtp", type=host_port, required=True)
    parser.add_argument("--domains", default="localhost")
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    domains = {d.strip().lower() for d in args.domains.replace(",", " ").split() if d.strip()}
    controller = Controller(
        ToLmtp(args.lmtp, domains),
        hostname=args.listen[0],
        port=args.listen[1],
        server_hostname="localhost",
        authenticator=SharedPassword(args.password),
        auth_required=False,
        auth_require_tls=False,
        data_size_limit=64 * 1024 * 1024,
        decode_data=False,
    )
    controller.start()
    LOG.info("smtp on %s:%d, delivering to lmtp %s:%d", *args.listen, *args.lmtp)

    loop = asyncio.new_event_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    loop.run_until_complete(stopped.wait())
    controller.stop()


if __name__ == "__main__":
    main()

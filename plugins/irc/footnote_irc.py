#!/usr/bin/env python3
"""Footnote's IRC plugin: an IRC bot that asks Footnote over its plugin protocol (version 1).

Standard library only (Python 3.9+). In a channel:

    !ask <question>          or   footnote: <question>   (the bot's nick, then : or ,)
    !ingest <text>           stores the text as a document of this channel
    !sources                 lists the channel's documents
    !forget <document id>    removes one (admins only, by Footnote's [scopes] rules)

Each channel is its own Footnote room (scope.room = the channel, lower-cased; scope.space = the
network name). Answers come as a few lines with their numbered sources, throttled for the
server's flood limits. Both connections (IRC and Footnote) reconnect with backoff. An answer that
finished while this plugin was down is resent by Footnote when it reconnects and posted in the
channel it was asked in; it is acknowledged only once its lines were written to IRC.

Settings (environment):
    FOOTNOTE_URL            Footnote's address (default http://127.0.0.1:8080)
    FOOTNOTE_PLUGIN_TOKEN   this plugin's token from [[plugins]] (required)
    IRC_HOST, IRC_PORT      the IRC server (default 127.0.0.1:6667)
    IRC_NICK                the bot's nick (default footnote)
    IRC_CHANNELS            channels to join, comma-separated (default #footnote)
    IRC_NETWORK             the network's name, used as scope.space (default IRC_HOST)
    IRC_BURST, IRC_LINES_PER_SECOND   flood control (default 4 lines at once, then 1 a second)
    IRC_MAX_ANSWER_LINES    answer lines before it is cut (default 6)
"""

import base64
import collections
import http.client
import json
import logging
import os
import queue
import socket
import threading
import time
import urllib.parse
import uuid

log = logging.getLogger("footnote-irc")

PROTOCOL = 1
PATH = "/plugin/v1"
LINE_BYTES = 400  # what fits in one PRIVMSG with the server's prefix, well under 512
MAX_SOURCES = 5
MAX_LISTED = 10


def env(name, default=None):
    value = os.environ.get(name, "").strip()
    return value or default


class Footnote:
    """Calls to Footnote: one HTTP request each, JSON in and out."""

    def __init__(self, url, token):
        parsed = urllib.parse.urlsplit(url)
        self.tls = parsed.scheme == "https"
        self.host, self.port = parsed.hostname, parsed.port or (443 if self.tls else 80)
        self.token = token
        self.platform = None  # from the hello frame

    def connection(self, timeout):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self):
        return {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}

    def post(self, call, body, timeout=60):
        """Returns (status, reply); raises OSError when Footnote cannot be reached."""
        conn = self.connection(timeout)
        try:
            conn.request("POST", PATH + "/" + call, json.dumps(body), self.headers())
            response = conn.getresponse()
            text = response.read()
            return response.status, (json.loads(text) if text else None)
        finally:
            conn.close()

    def events(self):
        """Yields the frames of one connection of the event stream until it ends."""
        conn = self.connection(timeout=30)  # keep-alive comments come every few seconds
        try:
            conn.request("GET", PATH + "/events", headers={"Authorization": "Bearer " + self.token,
                                                           "Accept": "text/event-stream"})
            response = conn.getresponse()
            if response.status != 200:
                raise OSError("Footnote refused the event stream (%s): %s" % (response.status, response.read()[:300]))
            data = []
            while True:
                line = response.readline()
                if not line:
                    return
                line = line.decode("utf-8").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[6:] if line[5:6] == " " else line[5:])
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []
        finally:
            conn.close()


class Irc:
    """The IRC connection: a socket, a reader thread's callbacks, and a throttled writer."""

    def __init__(self, host, port, nick, channels, burst, per_second):
        self.host, self.port, self.nick, self.channels = host, port, nick, channels
        self.burst, self.interval = burst, 1.0 / per_second
        self.outgoing = queue.Queue()  # (line, callback when written)
        self.sock = None
        self.lock = threading.Lock()
        self.ready = threading.Event()

    def send_now(self, line):
        with self.lock:
            if self.sock is None:
                raise OSError("not connected")
            self.sock.sendall((line + "\r\n").encode("utf-8", "replace"))

    def say(self, target, lines, written=None):
        """Queues lines for `target`; `written` is called once the last one went out."""
        lines = [l for l in lines if l.strip()] or ["…"]
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            self.outgoing.put(("PRIVMSG %s :%s" % (target, line), written if last else None))

    def writer(self):
        """Sends queued lines: a burst at once, then one per interval; waits out disconnections."""
        tokens, refill = float(self.burst), time.monotonic()
        pending = None
        while True:
            if pending is None:
                pending = self.outgoing.get()
            now = time.monotonic()
            tokens = min(self.burst, tokens + (now - refill) / self.interval)
            refill = now
            if tokens < 1:
                time.sleep((1 - tokens) * self.interval)
                continue
            self.ready.wait()
            try:
                self.send_now(pending[0])
            except OSError:
                time.sleep(0.5)  # the reader reconnects; the line waits
                continue
            tokens -= 1
            if pending[1] is not None:
                pending[1]()
            pending = None

    def run(self, on_message):
        """Connects, registers, joins, and hands channel messages to `on_message`; forever."""
        delay = 1
        while True:
            try:
                self.session(on_message)
                delay = 1
            except OSError as e:
                log.warning("IRC connection lost (%s); again in %s s", e, delay)
            self.ready.clear()
            with self.lock:
                self.sock = None
            time.sleep(delay)
            delay = min(delay * 2, 30)

    def session(self, on_message):
        sock = socket.create_connection((self.host, self.port), timeout=300)
        with self.lock:
            self.sock = sock
        nick = self.nick
        self.send_now("NICK " + nick)
        self.send_now("USER %s 0 * :Footnote" % self.nick)
        buffer = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                raise OSError("the server closed the connection")
            buffer += chunk
            while b"\r\n" in buffer or b"\n" in buffer:
                raw, _, buffer = buffer.partition(b"\n")
                line = raw.rstrip(b"\r").decode("utf-8", "replace")
                prefix, command, params = parse(line)
                if command == "PING":
                    self.send_now("PONG :" + (params[-1] if params else ""))
                elif command == "001":
                    self.nick = params[0] if params else nick
                    for channel in self.channels:
                        self.send_now("JOIN " + channel)
                    self.ready.set()
                    log.info("On IRC as %s, joining %s", self.nick, ", ".join(self.channels))
                elif command == "433":  # nick in use
                    nick += "_"
                    self.send_now("NICK " + nick)
                elif command == "INVITE" and len(params) >= 2:
                    self.send_now("JOIN " + params[1])
                elif command == "PRIVMSG" and len(params) == 2 and prefix:
                    on_message(prefix.split("!", 1)[0], params[0], params[1])


def parse(line):
    """(prefix, command, params) of an IRC line."""
    prefix = None
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    trailing = None
    if " :" in line:
        line, _, trailing = line.partition(" :")
    parts = line.split()
    command, params = (parts[0].upper() if parts else ""), parts[1:]
    if trailing is not None:
        params.append(trailing)
    return prefix, command, params


def split_line(text, limit=LINE_BYTES):
    """Cuts text into pieces of at most `limit` UTF-8 bytes, at spaces where it can."""
    out = []
    for paragraph in text.splitlines():
        paragraph = paragraph.strip()
        while len(paragraph.encode("utf-8")) > limit:
            cut = paragraph.encode("utf-8")[:limit].decode("utf-8", "ignore")
            space = cut.rfind(" ")
            if space > limit // 2:
                cut = cut[:space]
            out.append(cut)
            paragraph = paragraph[len(cut):].lstrip()
        if paragraph:
            out.append(paragraph)
    return out


def locator(loc):
    parts = []
    if loc.get("subject"):
        parts.append("“%s”" % loc["subject"])
    if loc.get("page"):
        parts.append("p. %s" % loc["page"])
    if loc.get("heading_path"):
        parts.append(" › ".join(loc["heading_path"]))
    return " · ".join(parts)


def answer_lines(nick, finished, max_lines):
    """The lines that post a finished answer (or its error) for `nick`."""
    event = finished["event"]
    if event["type"] == "failed":
        return ["%s: %s" % (nick, finished.get("message") or "Something went wrong.")]
    answer = event["data"]
    lines = []
    if finished.get("message"):  # the notice (nothing found, model unreachable, uncited)
        lines.extend(split_line(finished["message"]))
    lines.extend(split_line(answer.get("text", "")))
    if answer.get("cut_short"):
        lines.append("(The answer was cut short.)")
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [lines[max_lines - 1][:LINE_BYTES - 2] + " …"]
    lines = lines or ["(no answer)"]
    lines[0] = "%s: %s" % (nick, lines[0])
    for citation in answer.get("citations", [])[:MAX_SOURCES]:
        where = locator(citation.get("locator", {}))
        lines.append("[%s] %s%s" % (citation["n"], citation["title"], " — " + where if where else ""))
    return [l[:LINE_BYTES] for l in lines]


def chunks(n):
    return "1 chunk" if n == 1 else "%s chunks" % n


class Plugin:
    def __init__(self):
        token = env("FOOTNOTE_PLUGIN_TOKEN")
        if not token:
            raise SystemExit("Set FOOTNOTE_PLUGIN_TOKEN to this plugin's token from Footnote's [[plugins]].")
        self.footnote = Footnote(env("FOOTNOTE_URL", "http://127.0.0.1:8080"), token)
        host = env("IRC_HOST", "127.0.0.1")
        self.network = env("IRC_NETWORK", host)
        channels = [c.strip() for c in env("IRC_CHANNELS", "#footnote").split(",") if c.strip()]
        self.irc = Irc(host, int(env("IRC_PORT", "6667")), env("IRC_NICK", "footnote"), channels,
                       int(env("IRC_BURST", "4")), float(env("IRC_LINES_PER_SECOND", "1")))
        self.max_lines = int(env("IRC_MAX_ANSWER_LINES", "6"))
        # Ids posted by this process, newest last: a resend is acknowledged, not posted again.
        self.posted = collections.OrderedDict()

    def scope(self, channel):
        return {"platform": self.footnote.platform or "irc", "space": self.network,
                "room": channel.lower(), "thread": None}

    @staticmethod
    def actor(nick):
        return {"user_id": nick, "display_name": nick, "roles": [], "is_owner": False}

    def call(self, what, body, attempts=5):
        """A call with retries while Footnote is unreachable; None when it stays so."""
        delay = 1
        for attempt in range(attempts):
            try:
                return self.footnote.post(what, body)
            except OSError as e:
                log.warning("Footnote unreachable for %s (%s)", what, e)
                if attempt < attempts - 1:
                    time.sleep(delay)
                    delay = min(delay * 2, 10)
        return None

    def on_message(self, nick, target, text):
        if not target.startswith(("#", "&")):
            self.irc.say(nick, ["Ask me in a channel: each channel has its own documents."])
            return
        text = text.strip()
        mention = None
        for sep in (":", ","):
            if text.lower().startswith(self.irc.nick.lower() + sep):
                mention = text[len(self.irc.nick) + 1:].strip()
        if mention is not None or text.startswith("!ask "):
            question = mention if mention is not None else text[5:].strip()
            threading.Thread(target=self.ask, args=(nick, target, question), daemon=True).start()
        elif text.startswith("!ingest "):
            threading.Thread(target=self.ingest, args=(nick, target, text[8:].strip()), daemon=True).start()
        elif text == "!sources":
            threading.Thread(target=self.sources, args=(nick, target), daemon=True).start()
        elif text.startswith("!forget "):
            threading.Thread(target=self.forget, args=(nick, target, text[8:].strip()), daemon=True).start()

    def refused(self, nick, channel, reply):
        if reply is None:
            self.irc.say(channel, ["%s: Footnote is unreachable right now; try again in a minute." % nick])
        else:
            status, body = reply
            message = (body or {}).get("message") or "Footnote refused that (%s)." % status
            self.irc.say(channel, ["%s: %s" % (nick, message)])

    def ask(self, nick, channel, question):
        if not question:
            return
        body = {"id": str(uuid.uuid4()), "scope": self.scope(channel), "actor": self.actor(nick),
                "question": {"text": question, "history": []}}
        reply = self.call("ask", body)  # the same id on a retry: Footnote asks once
        if reply is None or reply[0] != 202:
            self.refused(nick, channel, reply)
        # The answer comes on the event stream.

    def ingest(self, nick, channel, text):
        if not text:
            return
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        # Its first words make the title sources show; nick and time keep the name unique (a
        # document of the same name would be replaced).
        words = " ".join("".join(c for c in w if c.isalnum() or c in "-'.").strip(".") for w in text.split()[:6])
        words = " ".join(words.split())
        name = "%s (irc-%s-%s).txt" % (words or "note", nick, stamp)
        upload = {"file_name": name, "mime": "text/plain",
                  "bytes": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                  "origin": {"link": None, "sender": nick, "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        reply = self.call("ingest", {"scope": self.scope(channel), "actor": self.actor(nick), "upload": upload})
        if reply is None or reply[0] != 200:
            return self.refused(nick, channel, reply)
        r = reply[1]
        what = {"added": "Added", "duplicate": "Already had", "replaced": "Updated"}.get(r["outcome"]["kind"], "Added")
        self.irc.say(channel, ["%s: %s “%s” (%s) as document %s." % (nick, what, r["title"], chunks(r["chunks"]), r["document_id"])])

    def sources(self, nick, channel):
        reply = self.call("documents", {"scope": self.scope(channel), "actor": self.actor(nick)})
        if reply is None or reply[0] != 200:
            return self.refused(nick, channel, reply)
        docs = reply[1]
        if not docs:
            return self.irc.say(channel, ["%s: No documents here yet; add one with !ingest <text>." % nick])
        lines = ["%s: %d document%s here:" % (nick, len(docs), "" if len(docs) == 1 else "s")]
        lines += ["[%s] %s (%s)" % (d["id"], d["title"], chunks(d["chunks"])) for d in docs[:MAX_LISTED]]
        if len(docs) > MAX_LISTED:
            lines.append("… and %d more." % (len(docs) - MAX_LISTED))
        self.irc.say(channel, lines)

    def forget(self, nick, channel, document_id):
        body = {"scope": self.scope(channel), "actor": self.actor(nick), "document_id": document_id}
        reply = self.call("forget", body)
        if reply is None or reply[0] != 200:
            return self.refused(nick, channel, reply)
        self.irc.say(channel, ["%s: Forgot “%s” (%s)." % (nick, reply[1]["title"], chunks(reply[1]["chunks"]))])

    def acknowledge(self, ids):
        if self.call("ack", {"ids": ids}) is None:
            log.warning("Could not acknowledge %s; Footnote will resend it", ids)

    def on_finished(self, finished):
        fid = finished["id"]
        if fid in self.posted:
            return self.acknowledge([fid])
        self.posted[fid] = True
        while len(self.posted) > 10000:
            self.posted.popitem(last=False)
        channel = finished["scope"]["room"]
        lines = answer_lines(finished["actor"]["user_id"], finished, self.max_lines)
        self.irc.say(channel, lines, written=lambda: threading.Thread(
            target=self.acknowledge, args=([fid],), daemon=True).start())

    def events(self):
        delay = 1
        while True:
            try:
                for frame in self.footnote.events():
                    if frame["type"] == "hello":
                        if frame["protocol"] != PROTOCOL:
                            log.error("Footnote speaks plugin protocol %s; this plugin speaks %s.",
                                      frame["protocol"], PROTOCOL)
                            os._exit(2)
                        self.footnote.platform = frame["platform"]
                        log.info("Connected to Footnote as plugin %s (platform %s)", frame["plugin"], frame["platform"])
                        delay = 1
                    elif frame["type"] == "finished":
                        self.on_finished(frame)
                log.warning("Footnote closed the event stream")
            except (OSError, ValueError, http.client.HTTPException) as e:
                log.warning("Footnote event stream lost (%s); again in %s s", e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30)

    def run(self):
        threading.Thread(target=self.events, daemon=True).start()
        threading.Thread(target=self.irc.writer, daemon=True).start()
        self.irc.run(self.on_message)


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Plugin().run()

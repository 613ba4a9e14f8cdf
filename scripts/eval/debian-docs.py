#!/usr/bin/env python3
"""Builds the "debian-docs" retrieval evaluation set (BEIR layout) from files a Debian system ships.

A second corpus beside SciFact, of a different shape: long licence texts with numbered sections,
Debian copyright files, manual pages (converted to Markdown, so they have headings) and emails
that forward a licence inline or as an attached message. The questions (`debian-docs.questions`,
next to this script) were written for it by hand; each names the document(s) that answer it.

    scripts/eval/debian-docs.py OUT_DIR
    footnote eval OUT_DIR --split test          # then --reuse for runs that change retrieval only

OUT_DIR gets `corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv` and `files/`. Licences, copyright
files and emails are uploaded as the files they are (`"file"` in a corpus line, read by
`footnote eval` and sniffed like any upload); manual pages are Markdown text. Nothing is copied
into the repository: the texts come from /usr/share/common-licenses, /usr/share/doc/*/copyright
and the manual pages of this machine (rendered with `man`). A document that is missing here is
left out, and so is every question that only it answers (both are listed on stderr).
"""

import email.message
import email.policy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LICENCES = Path("/usr/share/common-licenses")
DOC = Path("/usr/share/doc")
MAN = Path("/usr/share/man/man1")

# Regular files only (GPL, LGPL and GFDL are symbolic links to a version).
LICENCE_NAMES = [
    "Apache-2.0", "Artistic", "BSD", "CC0-1.0", "GFDL-1.2", "GFDL-1.3", "GPL-1", "GPL-2", "GPL-3",
    "LGPL-2", "LGPL-2.1", "LGPL-3", "MPL-1.1", "MPL-2.0",
]
# Debian copyright files with licences that /usr/share/common-licenses lacks (zlib, MIT, the
# Less licence, public domain, ...). Files that carry the 3-clause BSD text are left out, so that
# the endorsement question has exactly the documents its qrels name.
COPYRIGHT_PACKAGES = [
    "zlib1g", "bzip2", "libexpat1", "sqlite3", "less", "jq", "libtiff6", "xz-utils", "libyaml-0-2",
    "liblz4-1", "libffi8", "tar", "libssl3", "libonig5",
]
MAN_PAGES = [
    "tar", "gzip", "bzip2", "xz", "curl", "ssh", "less", "sed", "grep", "find", "diff", "patch",
    "jq", "make", "sqlite3", "dpkg",
]


def write_licences(files: Path, corpus: list) -> None:
    for name in LICENCE_NAMES:
        path = LICENCES / name
        if not path.is_file():
            continue
        (files / name).write_bytes(path.read_bytes())
        corpus.append({"_id": name, "file": f"files/{name}"})


def write_copyrights(files: Path, corpus: list) -> None:
    for package in COPYRIGHT_PACKAGES:
        path = DOC / package / "copyright"
        if not path.is_file():
            continue
        name = f"{package}.copyright"
        (files / name).write_bytes(path.read_bytes())
        corpus.append({"_id": name, "file": f"files/{name}"})


def render_man(page: Path) -> str:
    env = dict(os.environ, MANWIDTH="1000", LANG="C.UTF-8", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    out = subprocess.run(
        ["man", "--no-hyphenation", "--no-justification", "-E", "UTF-8", "-P", "cat", "-l", str(page)],
        env=env, capture_output=True, text=True, check=True,
    )
    return out.stdout


def man_markdown(name: str, rendered: str) -> tuple:
    """The title (from the NAME section) and Markdown text: sections and subsections become
    headings, indentation goes (it would make code blocks), blank lines stay."""
    lines = rendered.splitlines()
    # The first and last non-blank lines are the page header and footer.
    body = [l.rstrip() for l in lines]
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    body = body[1:-1]
    title = f"{name}(1)"
    out = []
    section = None
    for line in body:
        if not line.strip():
            out.append("")
            continue
        indent = len(line) - len(line.lstrip(" "))
        text = line.strip()
        if indent == 0:
            section = text
            out += ["", f"## {text.capitalize()}", ""]
        elif indent <= 3:
            out += ["", f"### {text}", ""]
        else:
            if section == "NAME" and " - " in text:
                title = f"{name}(1): {text.split(' - ', 1)[1].strip()}"
            if text.startswith("#"):
                text = "\\" + text
            out.append(text)
    markdown = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"
    return title, markdown


def write_man_pages(corpus: list) -> None:
    for name in MAN_PAGES:
        candidates = sorted(MAN.glob(f"{name}.1*"))
        if not candidates:
            continue
        try:
            title, text = man_markdown(name, render_man(candidates[0]))
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"cannot render the manual page of {name}: {e}", file=sys.stderr)
            continue
        corpus.append({"_id": f"{name}.1", "title": title, "text": text})


def mail(sender, to, subject, date, message_id, body):
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


def write_mails(files: Path, corpus: list) -> None:
    bsd = LICENCES / "BSD"
    if bsd.is_file():
        body = (
            "Hi all,\n\n"
            "before we ship the spreadsheet import, legal asked me to pass this on. The table\n"
            "parser we vendored last spring comes with the licence below. Please keep the notice\n"
            "in third_party/tableparser/ and in the about box.\n\n"
            "Dana\n\n"
            "---------- Forwarded message ---------\n"
            "From: Ivo Brandt <ivo@tableparser.example>\n"
            "Date: Mon, 13 Oct 2025 17:40:12 +0200\n"
            "Subject: Re: licence of the table parser\n"
            "To: Dana Whitfield <dana@example.org>\n\n"
            "Hello Dana,\n\n"
            "sure, this is the licence the parser is distributed under:\n\n"
            + bsd.read_text()
            + "\nBest regards,\nIvo\n"
        )
        msg = mail(
            "Dana Whitfield <dana@example.org>", "dev-team@example.org",
            "Fwd: licence of the table parser", "Tue, 14 Oct 2025 09:12:00 +0200",
            "<fwd-tableparser@example.org>", body,
        )
        name = "fwd-table-parser-licence.eml"
        (files / name).write_bytes(msg.as_bytes())
        corpus.append({"_id": name, "file": f"files/{name}"})

    expat = DOC / "libexpat1" / "copyright"
    licence = dep5_licence(expat.read_text(), "MIT") if expat.is_file() else None
    if licence:
        inner = mail(
            "Rosa Lindqvist <rosa@glyphworks.example>", "Marek Novak <marek@example.org>",
            "Icon font for the dashboard", "Thu, 02 Oct 2025 11:03:00 +0000",
            "<icons@glyphworks.example>",
            "Hi Marek,\n\nattached to this mail you get the icon font we talked about. It is free\n"
            "for your dashboard under the following terms:\n\n" + licence + "\n\nCheers,\nRosa\n",
        )
        outer = mail(
            "Marek Novak <marek@example.org>", "dev-team@example.org",
            "Fwd: Icon font for the dashboard", "Fri, 03 Oct 2025 08:30:00 +0200",
            "<fwd-icons@example.org>",
            "FYI, the font comes with its own licence (see the forwarded mail). We can bundle it.\n\nMarek\n",
        )
        outer.add_attachment(inner, filename="icon-font.eml")
        name = "fwd-icon-font.eml"
        (files / name).write_bytes(outer.as_bytes())
        corpus.append({"_id": name, "file": f"files/{name}"})

    body = (
        "Hi,\n\n"
        "summing up yesterday's call about the charting library for the mobile app. The library\n"
        "is GPL-3 only, and the app itself stays proprietary, so we will not link it into the app\n"
        "binary. We agreed on two options:\n\n"
        "1. use the LGPL-3 fork of the library, linked dynamically, and ship its source and our\n"
        "   object files so that users can relink it, or\n"
        "2. render the charts on the server and send images to the app.\n\n"
        "Priya prefers option 2 because the app store rules make relinking hard for users. We decide\n"
        "at the architecture review on Thursday; until then nobody adds the GPL library to the app.\n\n"
        "Tomas\n"
    )
    msg = mail(
        "Tomas Weber <tomas@example.org>", "dev-team@example.org",
        "Re: GPL charting library in the mobile app", "Wed, 08 Oct 2025 16:20:00 +0200",
        "<charts-decision@example.org>", body,
    )
    name = "re-gpl-charting-library.eml"
    (files / name).write_bytes(msg.as_bytes())
    corpus.append({"_id": name, "file": f"files/{name}"})


def dep5_licence(text: str, name: str):
    """The text of the stand-alone `License: NAME` paragraph of a Debian copyright file."""
    for paragraph in re.split(r"\n\s*\n", text):
        lines = paragraph.splitlines()
        if lines and lines[0].strip() == f"License: {name}" and len(lines) > 1:
            body = [l[1:] if l.startswith(" ") else l for l in lines[1:]]
            return "\n".join("" if l.strip() == "." else l for l in body)
    return None


def read_questions():
    """Lines `id<TAB>relevant ids (comma-separated, `doc:grade` to grade)<TAB>question`."""
    questions = []
    for raw in (HERE / "debian-docs.questions").read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        qid, relevant, text = raw.split("\t")
        grades = {}
        for item in relevant.split(","):
            doc, _, grade = item.strip().partition(":")
            grades[doc] = int(grade or 1)
        questions.append((qid, grades, text.strip()))
    return questions


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    files = out / "files"
    files.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    corpus = []
    write_licences(files, corpus)
    write_copyrights(files, corpus)
    write_man_pages(corpus)
    write_mails(files, corpus)
    ids = {d["_id"] for d in corpus}

    queries, qrels, dropped = [], [], []
    for qid, grades, text in read_questions():
        unknown = sorted(d for d in grades if d not in ids)
        if len(unknown) == len(grades):
            dropped.append(qid)
            continue
        queries.append({"_id": qid, "text": text})
        qrels += [(qid, d, g) for d, g in grades.items() if d in ids]
    wanted = {d for _, g, _ in read_questions() for d in g}
    missing = sorted(wanted - ids)

    with open(out / "corpus.jsonl", "w") as f:
        for doc in corpus:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    with open(out / "qrels" / "test.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, doc, grade in qrels:
            f.write(f"{qid}\t{doc}\t{grade}\n")
    print(f"{out}: {len(corpus)} documents, {len(queries)} questions", file=sys.stderr)
    if missing:
        print(f"missing on this machine: {', '.join(missing)}", file=sys.stderr)
    if dropped:
        print(f"questions left out (their documents are missing): {', '.join(dropped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

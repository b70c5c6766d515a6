#!/usr/bin/env python3
"""A local SMTP server that keeps every message it receives: one JSON line per message
({"from", "to", "data"}) appended to OUTFILE. The tests start it to receive the scheduler's
email; it also serves for trying email locally (`[email] transport = "smtp"`, `port = PORT`).

Usage: smtp-sink.py PORT OUTFILE  (needs `pip install aiosmtpd`; prints "ready" when listening)
"""

import json
import signal
import sys

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, path):
        self.path = path

    async def handle_DATA(self, server, session, envelope):
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Keep(path), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

"""A GStdin program in ginsfsm's shape (its gconsole read commands this way): every line
of standard input becomes an EV_RX_DATA event of the Reader gobj, which prints it; the
end of the input (EV_EOF) stops the GAplic.  Only the imports differ from ginsfsm.

    some-command | python gstdin_reader.py
"""

import logging

from fsmio import GAplic, GObj, GStdin

logging.basicConfig(level=logging.WARNING)


def ac_line(self, event):
    self.n_lines += 1
    print("line %d: %s" % (self.n_lines, event.data.upper()), flush=True)


def ac_eof(self, event):
    print("eof after %d lines" % self.n_lines, flush=True)
    self.gaplic.stop()


READER_FSM = {
    "event_list": ("EV_RX_DATA: bottom input", "EV_EOF: bottom input"),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_RX_DATA", ac_line, None),
            ("EV_EOF", ac_eof, None),
        ),
    },
}


class Reader(GObj):
    def __init__(self):
        GObj.__init__(self, READER_FSM)
        self.n_lines = 0

    def start_up(self):
        self.stdin = self.create_gobj("stdin", GStdin, self)


if __name__ == "__main__":
    ga = GAplic(name="reader", roles="")
    ga.create_gobj("reader", Reader, ga)
    ga.start()

"""A port of ginsfsm's examples/essential_gobjs/stress_server_echo.py, written for fsmio in
the same shape: an OnServer gobj owns a GTimer and a GServerSock, counts the connected
clients and echoes every EV_RX_DATA.  Only the imports differ from a ginsfsm program.

    python stress_server_echo.py [PORT]      (0: a free port; prints "READY <port>")
"""

import logging
import sys

from fsmio import GAplic, GObj, GServerSock, GTimer

logging.basicConfig(level=logging.WARNING)

n_connected_clisrv = 0


def ac_clisrv_timeout(self, event):
    self.set_timeout(10)
    print("Server's clients: %d, connected %d" % (len(self.dl_childs), n_connected_clisrv))


def ac_clisrv_connected(self, event):
    global n_connected_clisrv
    n_connected_clisrv += 1


def ac_clisrv_disconnected(self, event):
    global n_connected_clisrv
    n_connected_clisrv -= 1
    self.destroy_gobj(event.source[-1])


def ac_clisrv_rx_data(self, event):
    self.send_event(event.source[-1], "EV_SEND_DATA", data=event.data)


SERVER_FSM = {
    "event_list": (
        "EV_SET_TIMER: bottom output",
        "EV_TIMEOUT: bottom input",
        "EV_CONNECTED: bottom input",
        "EV_DISCONNECTED: bottom input",
        "EV_RX_DATA:bottom input",
    ),
    "state_list": ("ST_IDLE",),
    "machine": {
        "ST_IDLE": (
            ("EV_TIMEOUT", ac_clisrv_timeout, "ST_IDLE"),
            ("EV_CONNECTED", ac_clisrv_connected, "ST_IDLE"),
            ("EV_DISCONNECTED", ac_clisrv_disconnected, "ST_IDLE"),
            ("EV_RX_DATA", ac_clisrv_rx_data, "ST_IDLE"),
        ),
    },
}

SERVER_GCONFIG = {
    "verbose": [int, 1, 0, None, "Increase output verbosity. Values [0,1,2]"],
    "port": [int, 8000, 0, None, "Port."],
}


class OnServer(GObj):
    def __init__(self):
        GObj.__init__(self, SERVER_FSM, SERVER_GCONFIG)

    def start_up(self):
        self.timer = self.create_gobj(None, GTimer, self)
        self.set_timeout(5)
        self.server = self.create_gobj(
            None,
            GServerSock,
            self,
            host="127.0.0.1",
            port=self.config.port,
            transmit_ready_event_name=None,
        )
        print("READY %d" % self.server.config.port, flush=True)

    def set_timeout(self, seconds):
        self.send_event(self.timer, "EV_SET_TIMER", seconds=seconds)


if __name__ == "__main__":
    ga_srv = GAplic(name="server", roles="", **{"GObj.logger": logging})
    ga_srv.create_gobj(
        "server", OnServer, ga_srv, port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    )
    try:
        ga_srv.start()
    except (KeyboardInterrupt, SystemExit):
        print("Program stopped")
    print("Program stopped", flush=True)

"""A port of ginsfsm's examples/essential_gobjs/stress_client_echo.py, written for fsmio
in the same shape: an OnClient gobj opens CONNECTIONS GConnex clients and, each time its
GTimer fires with all of them connected, sends a query on every connection and counts
the echoes.  Only the imports differ from a ginsfsm program, plus ROUNDS (the original
ran until Ctrl-C): after that many rounds it stops its GAplic.

    python stress_client_echo.py HOST PORT CONNECTIONS ROUNDS
"""

import datetime
import logging
import sys

from fsmio import GAplic, GConnex, GObj, GTimer, close_all_sockets

logging.basicConfig(level=logging.WARNING)

query = b"GET / HTTP/1.1\r\n" + b"Host: \r\n" + b"\r\n"


def ac_client_timeout(self, event):
    if self.connex is None:
        self.connex = list(range(self.config.connections))
    if self.n_clients < self.config.connections:
        for i in range(self.n_clients, self.config.connections):
            self.n_clients += 1
            self.connex[i] = self.create_gobj(
                "client-%d" % i,
                GConnex,
                self,
                destinations=[(self.config.host, self.config.port)],
                transmit_ready_event_name=None,
            )
            self.connex[i].idx = i
            self.connex[i].conectado = 0
            self.connex[i].sended_msgs = 0
            self.connex[i].received_msgs = 0
    print("conectados: %d" % self.n_connected_clients)
    if self.n_connected_clients == self.config.connections:
        if self.rounds:
            n_echoes = sum(1 for c in self.connex if c.sended_msgs == c.received_msgs)
            n_total = sum(1 for c in self.connex if c.gsock.rxed_msgs == c.gsock.txed_msgs)
            print(
                "Echoes OK: %d of %d, gsock counts equal: %d"
                % (n_echoes, self.config.connections, n_total),
                flush=True,
            )
        if self.rounds == self.config.rounds:
            self.gaplic.stop()
            return
        self.rounds += 1
        for cli in self.connex:
            if cli.gsock.connected:
                cli.sended_msgs = 1
                cli.received_msgs = 0
                cli.tx_time = datetime.datetime.now()
                self.send_event(cli, "EV_SEND_DATA", data=query)
    self.set_timeout(0.5)


def ac_client_connected(self, event):
    if not event.source[-1].conectado:
        self.n_connected_clients += 1
        event.source[-1].conectado = 1


def ac_client_disconnected(self, event):
    if event.source[-1].conectado:
        self.n_connected_clients -= 1
        event.source[-1].conectado = 0


def ac_client_rx_data(self, event):
    cli = self.connex[event.source[-1].idx]
    cli.received_msgs += 1
    if event.data != query:
        print("BAD ECHO %r" % event.data, flush=True)


CLIENT_FSM = {
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
            ("EV_TIMEOUT", ac_client_timeout, "ST_IDLE"),
            ("EV_CONNECTED", ac_client_connected, "ST_IDLE"),
            ("EV_DISCONNECTED", ac_client_disconnected, "ST_IDLE"),
            ("EV_RX_DATA", ac_client_rx_data, "ST_IDLE"),
        ),
    },
}

CLIENT_GCONFIG = {
    "verbose": [int, 0, 0, None, "Increase output verbosity. Values [0,1,2]"],
    "connections": [int, 0, 0, None, "Limit of connections to be reached."],
    "host": [str, "127.0.0.1", 0, None, "Host."],
    "port": [int, 8000, 0, None, "Port."],
    "rounds": [int, 3, 0, None, "Rounds of queries before stopping."],
}


class OnClient(GObj):
    def __init__(self):
        GObj.__init__(self, CLIENT_FSM, CLIENT_GCONFIG)
        self.n_clients = 0
        self.n_connected_clients = 0
        self.rounds = 0

    def start_up(self):
        self.timer = self.create_gobj(None, GTimer, self)
        self.connex = None
        self.set_timeout(0.1)

    def set_timeout(self, seconds):
        self.send_event(self.timer, "EV_SET_TIMER", seconds=seconds)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    connections, rounds = int(sys.argv[3]), int(sys.argv[4])
    ga_cli = GAplic(name="client", roles="", **{"GObj.trace_mach": False, "GObj.logger": logging})
    ga_cli.create_gobj(
        "client", OnClient, ga_cli, host=host, port=port, connections=connections, rounds=rounds
    )
    try:
        ga_cli.start()
    except (KeyboardInterrupt, SystemExit):
        close_all_sockets(ga_cli._socket_map)
        print("Program stopped")
    print("client done", flush=True)

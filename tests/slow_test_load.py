"""Slow: real ``odoo-bin`` servers driven over XML-RPC by parallel clients.

Not run by ``make test`` (pytest collects ``test_*.py`` files only), but by ``make test-slow``:
each test starts a server on the test database, in prefork (``--workers=2``) or threaded
(``--workers=0``) mode, on ports 8090 to 8092.
"""

import os
import socket
import subprocess
import sys
import threading
import uuid
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager

import odoo
from odoo.tests.common import BaseCase

ODOO_BIN = os.path.join(os.path.dirname(odoo.__path__[0]), "odoo-bin")
# Ports of the servers these tests start (HTTP; and the prefork server's gevent port)
PREFORK_PORT, PREFORK_GEVENT_PORT, THREADED_PORT = 8090, 8091, 8092
CLIENTS = 8
PIPELINES = CLIENTS // 2
WRITES_PER_CLIENT = 50
SWITCHES = 20
NOTE = {"kind": "note", "note_body": "switched"}
SALESMAN_PASSWORD = "load-test-salesman"  # noqa: S105 - a test user of a test database


class OdooServer:
    """An ``odoo-bin`` process serving the test database, and XML-RPC clients to it."""

    def __init__(self, port, *options):
        self.port = port
        self.uids = {}
        self.db = odoo.tools.config["db_name"]
        self.log = os.path.join(odoo.tools.config["data_dir"], f"load-{port}.log")
        self.process = subprocess.Popen([  # noqa: S603 - our own server, our own arguments
            sys.executable, ODOO_BIN, f"--addons-path={odoo.tools.config['addons_path']}",
            f"--data-dir={odoo.tools.config['data_dir']}", f"--database={self.db}", f"--db-filter=^{self.db}$",
            f"--http-port={port}", "--max-cron-threads=0", "--log-level=warn", f"--logfile={self.log}",
            "--no-database-list", *options,
        ])
        self.wait_until_serving()

    def wait_until_serving(self):
        """Connect until the server answers (its registry is loaded), or fail if it exits."""
        while self.process.poll() is None:
            try:
                self.rpc("res.users", "search_count", [])
                return
            except (OSError, xmlrpc.client.ProtocolError):
                threading.Event().wait(0.5)  # not listening yet
        raise AssertionError(f"odoo-bin exited with {self.process.returncode}: see {self.log}")

    def stop(self):
        self.process.terminate()
        self.process.wait()

    def rpc(self, model, method, *args, login="admin", password="admin", **kwargs):
        if login not in self.uids:  # authenticating hashes the password: once per user
            common = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/xmlrpc/2/common")
            self.uids[login] = common.authenticate(self.db, login, password, {})
        uid = self.uids[login]
        models = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.port}/xmlrpc/2/object", allow_none=True)
        return models.execute_kw(self.db, uid, password, model, method, list(args), kwargs)


def report(figures):
    """Show the figures that the README's guarantees quote (``make test-slow`` runs pytest with -s)."""
    sys.stdout.write(f"\n{figures}\n")


def port_is_free(port):
    with closing(socket.socket()) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class LoadCase(BaseCase):
    """A pipeline, a salesman and a switched-on workflow, made over XML-RPC and removed after."""

    @contextmanager
    def server(self, port, *options):
        self.assertTrue(port_is_free(port), f"port {port} is taken")
        server = OdooServer(port, *options)
        try:
            yield server
        finally:
            server.stop()

    @contextmanager
    def workflow(self, server, name, action):
        """A pipeline, a salesman, and a switched-on workflow running ``action`` on reaching
        Qualified, made over XML-RPC; removed after the block."""
        rpc = server.rpc
        ids = {
            xmlid: rpc("ir.model.data", "check_object_reference", module, xmlid)[1]
            for module, xmlid in (("crm", "stage_lead1"), ("crm", "stage_lead2"), ("sales_team", "group_sale_salesman"))
        }
        # pipelines of two clients each: each pipeline's lead scoring rows are a hot spot for two
        ids["teams"] = rpc("crm.team", "create", [{"name": f"{name} pipeline {index}"} for index in range(PIPELINES)])
        ids["login"] = f"{name.lower()}_{uuid.uuid4().hex[:8]}"  # a fresh login, whatever a past run left
        ids["salesman"] = rpc("res.users", "create", {
            "name": f"{name} salesman", "login": ids["login"], "password": SALESMAN_PASSWORD,
            "groups_id": [(6, 0, [ids["group_sale_salesman"]])],
        })
        ids["workflow"] = rpc("workflow.automation", "create", {
            "name": name, "target": "crm.lead", "team_ids": [(6, 0, ids["teams"])],
            "trigger_ids": [(0, 0, {"kind": "stage_reached", "stage_id": ids["stage_lead2"],
                                    "action_ids": [(0, 0, action)]})],
        })
        rpc("workflow.automation", "write", [ids["workflow"]], {"active": True})
        try:
            yield ids
        finally:
            rpc("workflow.automation", "write", [ids["workflow"]], {"active": False})
            leads = rpc("crm.lead", "search", [("team_id", "in", ids["teams"]), ("active", "in", [True, False])])
            rpc("workflow.automation.run", "unlink",
                rpc("workflow.automation.run", "search", [("workflow_id", "=", ids["workflow"])]))
            rpc("crm.lead", "unlink", leads)
            rpc("workflow.automation", "unlink", [ids["workflow"]])
            rpc("res.users", "unlink", [ids["salesman"]])
            rpc("crm.team", "unlink", ids["teams"])

    @staticmethod
    def create_leads(server, ids, count):
        return server.rpc("crm.lead", "create", [
            {"name": f"Load {index}", "type": "opportunity", "team_id": ids["teams"][index % PIPELINES],
             "user_id": ids["salesman"], "stage_id": ids["stage_lead1"]}
            for index in range(count)
        ])

    @staticmethod
    def move(server, ids, lead_ids, stage):
        """The salesman moves his opportunities to ``stage`` (``new`` or ``qualified``)."""
        stage_id = ids["stage_lead2" if stage == "qualified" else "stage_lead1"]
        server.rpc("crm.lead", "write", lead_ids, {"stage_id": stage_id}, login=ids["login"],
                   password=SALESMAN_PASSWORD)

    @staticmethod
    def runs_of(server, ids, domain=()):
        return server.rpc("workflow.automation.run", "search_read",
                          [("workflow_id", "=", ids["workflow"]), *domain], fields=["state", "res_id", "message"])


class TestLoad(LoadCase):
    """Item 6 of issue 12: under load, no user's write fails and every action runs exactly once."""

    def test_parallel_salesmen_lose_no_write_and_no_action(self):
        """8 clients move their opportunities to Qualified and back, in parallel, on 2 workers;
        each arrival wins the opportunity, which updates its pipeline's lead scoring rows, as
        the arrivals of the other client of that pipeline do: concurrent updates inside the
        action, which Odoo retries."""
        with (
            self.server(PREFORK_PORT, "--workers=2", f"--gevent-port={PREFORK_GEVENT_PORT}") as server,
            self.workflow(server, "Loadwon", {"kind": "mark_won"}) as ids,
        ):
            leads = self.create_leads(server, ids, CLIENTS)
            failed_writes, arrivals = [], []

            def client(lead_id):
                for _index in range(WRITES_PER_CLIENT // 2):
                    for stage in ("qualified", "new"):
                        try:
                            self.move(server, ids, [lead_id], stage)
                        except xmlrpc.client.Fault as fault:
                            failed_writes.append(fault.faultString.strip().splitlines()[-1])
                        else:
                            arrivals.extend([lead_id] if stage == "qualified" else [])

            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(client, leads))
            runs = self.runs_of(server, ids)
            states = {state: len([run for run in runs if run["state"] == state]) for state in ("done", "failed")}
            report(
                f"load: {CLIENTS} clients x {WRITES_PER_CLIENT} writes on 2 workers: "
                f"{len(failed_writes)} failed writes {sorted(set(failed_writes))}, "
                f"{len(arrivals)} runs expected, {len(runs)} found, {states}"
            )
            self.assertEqual(failed_writes, [])
            self.assertEqual(len(arrivals), CLIENTS * WRITES_PER_CLIENT // 2)
            self.assertEqual(sorted(run["res_id"] for run in runs), sorted(arrivals), "each action ran once")
            self.assertEqual([run["message"] for run in runs if run["state"] != "done"], [])


class TestSwitchSeenAtOnce(LoadCase):
    """Item 12 of issue 12: switching a workflow on or off is seen by the next write, while other
    clients keep writing (and so keep reading the trigger index) during the switch."""

    def assert_switch_seen_at_once(self, server, ids, mode):
        [probe, *busy] = self.create_leads(server, ids, 5)
        stop = threading.Event()

        def keep_writing(lead_id):
            while not stop.is_set():
                for stage in ("qualified", "new"):
                    self.move(server, ids, [lead_id], stage)

        stale = []
        with ThreadPoolExecutor(len(busy)) as pool:
            busy_writers = [pool.submit(keep_writing, lead_id) for lead_id in busy]
            try:
                for switch in range(SWITCHES):
                    active = bool(switch % 2)
                    server.rpc("workflow.automation", "write", [ids["workflow"]], {"active": active})
                    before = len(self.runs_of(server, ids, [("res_id", "=", probe)]))
                    self.move(server, ids, [probe], "qualified")
                    fired = len(self.runs_of(server, ids, [("res_id", "=", probe)])) > before
                    self.move(server, ids, [probe], "new")
                    if fired != active:
                        stale.append(switch)
            finally:
                stop.set()
            for writer in busy_writers:
                writer.result()  # a busy writer's error fails the test
        report(
            f"switch ({mode}): {len(stale)} of {SWITCHES} switches not seen by the next write"
        )
        self.assertEqual(stale, [])

    def test_threaded_server(self):
        with (
            self.server(THREADED_PORT, "--workers=0") as server,
            self.workflow(server, "Switchthreaded", NOTE) as ids,
        ):
            self.assert_switch_seen_at_once(server, ids, "threaded")

    def test_prefork_server(self):
        with (
            self.server(PREFORK_PORT, "--workers=2", f"--gevent-port={PREFORK_GEVENT_PORT}") as server,
            self.workflow(server, "Switchprefork", NOTE) as ids,
        ):
            self.assert_switch_seen_at_once(server, ids, "prefork")

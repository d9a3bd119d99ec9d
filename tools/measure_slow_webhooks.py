"""Measure the queue against a slow endpoint: N webhooks to a local server answering in S seconds.

Runs the queue's cron as Odoo's cron worker would, with Odoo's default time limits: one call,
committed, then another while runs are due (the cron wakes itself). Prints the POSTs
received, the duplicates (same lead twice), the calls and the longest one. It commits a
pipeline, a workflow and leads into DATABASE, then removes them.

    python3 tools/measure_slow_webhooks.py DATABASE ADDONS_PATH [COUNT] [SECONDS] [CRON_TIME_LIMIT]
"""

import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import odoo
from odoo import SUPERUSER_ID, Command, api


def serve(delay):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["id"])
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def main(database, addons_path, count=25, delay=4.0, limit=-1):
    odoo.tools.config.parse_config([
        f"--addons-path={addons_path}", "--log-level=warn", f"--limit-time-real-cron={limit}",
    ])
    registry = odoo.modules.registry.Registry(database)
    server, received = serve(delay)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["ir.config_parameter"].set_param("crm_workflow_automation.webhook_allowed_hosts", "127.0.0.1")
        team = env["crm.team"].create({"name": "Slow webhooks"})
        stage = env.ref("crm.stage_lead2")
        workflow = env["workflow.automation"].create({
            "name": "Slow webhooks", "target": "crm.lead", "active": True, "team_ids": [Command.set(team.ids)],
            "trigger_ids": [Command.create({"kind": "stage_reached", "stage_id": stage.id, "action_ids": [
                Command.create({"kind": "webhook", "webhook_url": url, "webhook_timeout": 10}),
            ]})],
        })
        leads = env["crm.lead"].create([{"name": f"Slow {i}", "type": "opportunity", "team_id": team.id}
                                        for i in range(count)])
        leads.write({"stage_id": stage.id})
        ids = {"team": team.id, "workflow": workflow.id, "leads": leads.ids}
    calls = []
    while True:
        with registry.cursor() as cr:
            Run = api.Environment(cr, SUPERUSER_ID, {})["workflow.automation.run"]
            if not Run.search_count([("workflow_id", "=", ids["workflow"]), ("state", "=", "scheduled")]):
                break
            start = time.monotonic()
            Run._cron_execute_due_runs()
            calls.append(time.monotonic() - start)
    duplicates = sum(n - 1 for n in Counter(received).values())
    limit = limit if limit > 0 else odoo.tools.config["limit_time_real"]
    print(f"{count} webhooks to an endpoint answering in {delay:g} s, cron time limit {limit} s "
          f"(budget {Run._time_budget():g} s): {len(received)} POSTs, {duplicates} duplicates, "
          f"{len(calls)} calls of the cron, the longest {max(calls):.1f} s")
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["workflow.automation"].browse(ids["workflow"]).active = False
        env["workflow.automation.run"].search([("workflow_id", "=", ids["workflow"])]).unlink()
        env["crm.lead"].browse(ids["leads"]).unlink()
        env["workflow.automation"].browse(ids["workflow"]).unlink()
        env["crm.team"].browse(ids["team"]).unlink()
        env["ir.config_parameter"].set_param("crm_workflow_automation.webhook_allowed_hosts", False)
    server.shutdown()


if __name__ == "__main__":
    database, addons_path, *options = sys.argv[1:]
    main(database, addons_path, *map(int, options[:1]), *map(float, options[1:2]), *map(int, options[2:3]))

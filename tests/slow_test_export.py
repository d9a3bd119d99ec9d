"""Slow: the module an export makes, installed with ``odoo-bin -i`` into a fresh database.

Run by ``make test-slow``, not by ``make test``: making a database with crm and project takes
about 90 seconds. The workflows are made and exported in the test database (and rolled back),
the zip installed into a fresh database without demo data (``<test database>_b``, dropped
after), where ``odoo-bin shell`` fills in the blanks, switches each workflow on and fires the
same change as in the test database (``tests/export_round_trip.py`` in both).
"""

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from freezegun import freeze_time

import odoo
from odoo.tests import tagged
from odoo.tools import convert, file_path

from .common import WorkflowAutomationCase
from .export_round_trip import NOW, fire_same_change, structure

ODOO_BIN = os.path.join(os.path.dirname(odoo.__path__[0]), "odoo-bin")
MODULE = "cwa_export_slow"
ROUND_TRIP = file_path("crm_workflow_automation/tests/export_round_trip.py")
# What odoo-bin shell runs in the fresh database: the blanks filled in, the same change fired
SHELL_SCRIPT = """
import json
from freezegun import freeze_time
exec(compile(open({round_trip!r}).read(), {round_trip!r}, "exec"))
env.company.partner_id.tz = "UTC"
team = env["crm.team"].create({{"name": "Pipeline B"}})
user = env.ref("base.user_admin")
partner = env["res.partner"].create({{"name": "Acme Corp", "email": "buyer@acme.example.com"}})
ids = env["ir.model.data"].search([("module", "=", {module!r}), ("model", "=", "workflow.automation")])
report = {{}}
with freeze_time({now!r}):
    for workflow in env["workflow.automation"].with_context(active_test=False).browse(ids.mapped("res_id")):
        installed = [workflow.active, workflow.is_imported, structure(env, workflow, site=False)]
        fill_blanks(env, workflow, user, team)
        if workflow.target == "crm.lead":  # each in a pipeline of its own, as in the test database
            workflow.team_ids = env["crm.team"].create({{"name": workflow.name}})
        report[workflow.name] = [*installed, fire_same_change(env, workflow, team, user, partner)[0]]
print("CWA-REPORT " + json.dumps(report, default=str))
env.cr.rollback()
"""


@tagged("post_install", "-at_install")
class TestExportToFreshDatabase(WorkflowAutomationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "UTC"
        cls.database = odoo.tools.config["db_name"] + "_b"
        cls.data_dir = odoo.tools.config["data_dir"]

    def odoo_bin(self, command, addons, *arguments, **kwargs):
        return subprocess.run(  # noqa: S603 - our own odoo-bin, our own arguments
            [sys.executable, ODOO_BIN, command, f"--addons-path={odoo.tools.config['addons_path']},{addons}",
             f"--data-dir={self.data_dir}", f"--database={self.database}", "--no-http", *arguments],
            capture_output=True, text=True, check=False, **kwargs,
        )

    def drop_database(self):
        subprocess.run(["dropdb", "--if-exists", "--force", self.database], check=True)  # noqa: S607
        shutil.rmtree(os.path.join(self.data_dir, "filestore", self.database), ignore_errors=True)

    def workflows(self):
        convert.convert_file(self.env, "my_consulting", "consultant_workflow.xml", idref={}, mode="init",
                             pathname=file_path("crm_workflow_automation/tests/data/consultant_workflow.xml"))
        sample = self.env.ref("my_consulting.workflow_automation_big_deal_qualified")
        sample.active = False
        return sample | self.every_action_workflow() | self.env["workflow.automation"].union(*self.preset_copies())

    def test_module_zip_installs_on_a_fresh_database_and_runs_the_same(self):
        workflows = self.workflows()
        wizard = self.env["workflow.automation.export"].create({
            "workflow_ids": [(6, 0, workflows.ids)], "module_name": MODULE,
        })
        wizard.action_export_module()
        expected = {}
        with freeze_time(NOW):
            for workflow in workflows:
                before = structure(self.env, workflow, site=False)
                runs = fire_same_change(self.env, workflow, self.team_a, self.salesman, self.partner)[0]
                expected[workflow.name] = [False, True, before, runs]
        expected = json.loads(json.dumps(expected, default=str))

        addons = tempfile.mkdtemp(prefix="cwa_export_")
        self.addCleanup(shutil.rmtree, addons)
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(wizard.data_file))) as module:
            module.extractall(addons)
        self.drop_database()
        self.addCleanup(self.drop_database)
        log = os.path.join(self.data_dir, f"install-{self.database}.log")
        install = self.odoo_bin(
            "server", addons, "-i", MODULE, "--without-demo=all", "--stop-after-init", f"--logfile={log}"
        )
        with open(log, encoding="utf-8") as log_file:
            errors = [line for line in log_file if " ERROR " in line or " CRITICAL " in line]
        self.assertEqual((install.returncode, errors), (0, []), f"see {log}")

        shell = self.odoo_bin("shell", addons, "--log-level=warn", input=SHELL_SCRIPT.format(
            round_trip=ROUND_TRIP, module=MODULE, now=NOW,
        ))
        lines = [line for line in shell.stdout.splitlines() if line.startswith("CWA-REPORT ")]
        self.assertEqual(len(lines), 1, shell.stderr[-3000:])
        report = json.loads(lines[0].removeprefix("CWA-REPORT "))
        self.assertEqual(sorted(report), sorted(expected))
        for name, (active, imported, installed, runs) in report.items():
            with self.subTest(workflow=name):
                self.assertEqual((active, imported), (False, True), "installed switched off, to fill in")
                self.assertEqual(installed, expected[name][2], "the same structure")
                self.assertEqual(runs, expected[name][3], "the same runs")
                self.assertTrue(runs)
        sys.stdout.write(f"\n{len(report)} workflows installed into a fresh database, the same runs\n")

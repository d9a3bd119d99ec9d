import difflib
import json
import re
import socket
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from freezegun import freeze_time

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.tests import TransactionCase, new_test_user
from odoo.tools import SQL

from .export_round_trip import fill_blanks

ADDON = "crm_workflow_automation"


def load_french(env):
    """Activate French and load this module's French terms (a fresh test database has neither)."""
    env["res.lang"]._activate_lang("fr_FR")
    env["ir.module.module"]._load_module_terms([ADDON], ["fr_FR"], overwrite=True)


def frozen_at(moment):
    """The clock frozen at ``moment``; left running when ``moment`` is None."""
    return freeze_time(moment) if moment else nullcontext()


def messages_containing(record, text):
    """The messages of ``record`` whose body contains ``text``."""
    return record.message_ids.filtered(lambda message: text in (message.body or ""))


class WorkflowAutomationCase(TransactionCase):
    """Shared setup: two pipelines with the shared CRM stages, a salesperson, factories."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Workflows of the demo data must not fire in the tests.
        cls.env["workflow.automation"].search([]).write({"active": False})
        cls.company = cls.env.company
        cls.stage_new = cls.env.ref("crm.stage_lead1")
        cls.stage_qualified = cls.env.ref("crm.stage_lead2")
        cls.stage_proposition = cls.env.ref("crm.stage_lead3")
        cls.stage_won = cls.env.ref("crm.stage_lead4")
        cls.team_a, cls.team_b = cls.env["crm.team"].create([{"name": "Pipeline A"}, {"name": "Pipeline B"}])
        cls.salesman = new_test_user(
            cls.env, login="wa_salesman", name="Sally Sales", groups="sales_team.group_sale_salesman"
        )
        cls.owner = new_test_user(
            cls.env, login="wa_owner", name="Oscar Owner", groups="sales_team.group_sale_salesman"
        )
        cls.sales_manager = new_test_user(
            cls.env, login="wa_sales_manager", name="Mia Manager", groups="sales_team.group_sale_manager"
        )
        cls.tag = cls.env["crm.tag"].create({"name": "Automated"})
        cls.activity_call = cls.env.ref("mail.mail_activity_data_call")
        cls.partner = cls.env["res.partner"].create({"name": "Acme Corp", "email": "buyer@acme.example.com"})
        # Project stages, "Done" being the first folded one: where a project is closed
        cls.stage_todo, cls.stage_doing, cls.stage_done = cls.env["project.project.stage"].create([
            {"name": "To do", "sequence": 1},
            {"name": "Doing", "sequence": 2},
            {"name": "Done", "sequence": 3, "fold": True},
        ])

    # ------------------------------------------------------------------
    # The users who really act, and their paths
    # ------------------------------------------------------------------

    @classmethod
    def new_salesman(cls, login, **values):
        """A salesman with *Sales / User: Own Documents Only*, the default sales right."""
        return new_test_user(cls.env, login=login, groups="sales_team.group_sale_salesman", **values)

    @classmethod
    def new_workflow_manager(cls, login="wa_workflow_manager", **values):
        """A delegated workflow manager: a sales manager in *Workflow Automation / Manager*,
        neither a system admin nor a *Mail Template Editor*."""
        return new_test_user(
            cls.env, login=login,
            groups="sales_team.group_sale_manager,crm_workflow_automation.group_workflow_automation_manager",
            **values,
        )

    @staticmethod
    def drag(records, vals, user):
        """A kanban drop as the web client makes it: ``web_save`` as ``user``, then the card
        read back (the read-back runs with the user's rights, as in the browser)."""
        return records.with_user(user).web_save(vals, specification={
            "display_name": {},
            "stage_id": {"fields": {"display_name": {}}},
            "user_id": {"fields": {"display_name": {}}},
        })

    # ------------------------------------------------------------------
    # Factories
    # ------------------------------------------------------------------

    @classmethod
    def create_workflow(cls, triggers, name="Test workflow", target="crm.lead", active=True, **values):
        """Create a workflow from ``[{trigger values, 'actions': [action values]}]``.

        It is built switched off, then switched on: a switched-on workflow is locked.
        """
        workflow = cls.env["workflow.automation"].create({
            "name": name,
            "target": target,
            "trigger_ids": [
                Command.create({
                    **{key: value for key, value in trigger.items() if key != "actions"},
                    "action_ids": [
                        Command.create({"sequence": sequence, **action})
                        for sequence, action in enumerate(trigger.get("actions", []))
                    ],
                })
                for trigger in triggers
            ],
            **values,
        })
        if active:
            workflow.active = True
        return workflow

    @classmethod
    def create_stage_workflow(cls, stage, actions, teams=None, **values):
        """A workflow firing when an opportunity reaches ``stage``."""
        teams = teams if teams is not None else cls.team_a
        return cls.create_workflow(
            [{"kind": "stage_reached", "stage_id": stage.id, "actions": actions}],
            team_ids=[Command.set(teams.ids)],
            **values,
        )

    def fire(self, *actions, leads=None, teams=None, stage=None):
        """Run ``actions`` by the salesman moving ``leads`` (one new lead by default) to
        ``stage`` (Qualified by default)."""
        stage = stage or self.stage_qualified
        workflow = self.create_stage_workflow(stage, list(actions), teams=teams)
        leads = leads or self.create_leads()
        leads.with_user(self.salesman).write({"stage_id": stage.id})
        return workflow, leads

    def qualify(self, leads=None, user=None, count=1, at=None, drag=False):
        """Move ``leads`` (by default ``count`` new ones) to Qualified, as ``user`` (by default
        the test's own user), at the moment ``at`` (by default now); with ``drag``, by a
        kanban drop (``user`` needed). Return the leads."""
        with frozen_at(at):
            leads = leads or self.create_leads(count)
            if drag:
                self.drag(leads, {"stage_id": self.stage_qualified.id}, user)
            else:
                (leads.with_user(user) if user else leads).write({"stage_id": self.stage_qualified.id})
        return leads

    def qualify_afresh(self, leads, user=None):
        """``qualify`` with ``leads`` read anew, as a new request reads them: the writes
        compared by a query count then read the same."""
        leads.invalidate_recordset()
        return self.qualify(leads, user)

    def create_loop_workflows(self):
        """Ping moves an opportunity reaching Qualified to Proposition, Pong moves it back."""
        ping = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "set_stage", "stage_id": self.stage_proposition.id}], name="Ping"
        )
        pong = self.create_stage_workflow(
            self.stage_proposition, [{"kind": "set_stage", "stage_id": self.stage_qualified.id}], name="Pong"
        )
        return ping, pong

    def note_workflow(self, trigger, **values):
        """A workflow posting a note on ``trigger`` (values), to see where and how often it fired."""
        return self.create_workflow([{**trigger, "actions": [{"kind": "note", "note_body": "fired"}]}], **values)

    def fire_on_batch(self, action, count=3):
        """Move ``count`` new leads to Qualified in one write that runs ``action``.

        Return the leads and the SQL queries of that write.
        """
        self.create_stage_workflow(self.stage_qualified, [action])
        leads = self.create_leads(count)
        with self.capture_queries() as queries:
            leads.write({"stage_id": self.stage_qualified.id})
        return leads, queries

    @staticmethod
    def count_statements(queries, pattern):
        """How many of ``queries`` match the regular expression ``pattern``."""
        return len([query for query in queries if re.search(pattern, query, re.S)])

    @classmethod
    def create_project_workflow(cls, actions, kind="create", **values):
        """A workflow of projects firing on ``kind`` (project creation by default)."""
        return cls.create_workflow([{"kind": kind, "actions": actions}], target="project.project", **values)

    @classmethod
    def model_field(cls, name, model="crm.lead"):
        """The ``ir.model.fields`` record of a field."""
        return cls.env["ir.model.fields"]._get(model, name)

    @classmethod
    def create_leads(cls, count=1, team=None, stage=None, **values):
        team = team or cls.team_a
        stage = stage or cls.stage_new
        return cls.env["crm.lead"].create([
            {
                "name": f"Opportunity {index}",
                "type": "opportunity",
                "team_id": team.id,
                "stage_id": stage.id,
                "partner_id": cls.partner.id,
                "user_id": cls.salesman.id,
                **values,
            }
            for index in range(count)
        ])

    @classmethod
    def create_project(cls, name="Website", **values):
        return cls.env["project.project"].create({"name": name, "stage_id": cls.stage_todo.id, **values})

    @classmethod
    def create_plan(cls, templates, model="crm.lead", name="Onboarding"):
        """An activity plan of ``model`` from ``[{template values}]``."""
        return cls.env["mail.activity.plan"].create({
            "name": name,
            "res_model": model,
            "template_ids": [Command.create(template) for template in templates],
        })

    def open_test_wizard(self, workflow, **values):
        """The "Test this workflow" wizard of ``workflow``, as its button opens it."""
        return self.env["workflow.automation.test.wizard"].with_context(default_workflow_id=workflow.id).create(values)

    def create_test_record(self, workflow, **values):
        """A test record made by the wizard (``values``: its fields), as the wizard opens it."""
        action = self.open_test_wizard(workflow, **values).action_create_test_record()
        return self.env[action["res_model"]].browse(action["res_id"])

    @classmethod
    def create_foreign_team(cls):
        """A pipeline of another company: assigning it to our leads fails."""
        other_company = cls.env["res.company"].create({"name": "Other Co"})
        return cls.env["crm.team"].create({"name": "Foreign", "company_id": other_company.id})

    # ------------------------------------------------------------------
    # Workflows to export: every preset completed, every action kind
    # ------------------------------------------------------------------

    def preset_copies(self):
        """Each preset made into a workflow of one's own, completed as an admin would."""
        presets = self.env["workflow.automation"].with_context(active_test=False).search([("is_preset", "=", True)])
        self.assertEqual(len(presets), 10)
        for preset in presets:
            workflow = preset.copy({"name": preset.name, "preset_id": preset.id})
            if workflow.target == "crm.lead":
                workflow.team_ids = self.team_a
            fill_blanks(self.env, workflow, self.owner, self.team_b)
            yield workflow

    def every_action_workflow(self):
        """A workflow with an action of every kind, using records of this database's own."""
        stage = self.env["crm.stage"].create({"name": "Contract signed", "sequence": 70})
        reason = self.env["crm.lost.reason"].create({"name": "Went silent"})
        tag = self.env["crm.tag"].create({"name": "Round trip", "color": 3})
        activity_type = self.env["mail.activity.type"].create({"name": "Site visit", "res_model": "crm.lead"})
        plan = self.create_plan([{"activity_type_id": activity_type.id, "summary": "Visit the site"}])
        template = self.create_template(name="Round trip e-mail", subject="About {{ object.name }}")
        return self.create_stage_workflow(self.stage_qualified, [
            {"kind": "assign_user", "user_id": self.owner.id},
            {"kind": "activity", "activity_type_id": activity_type.id, "activity_summary": "Visit {{ object.name }}"},
            {"kind": "activity", "followup_mode": "plan", "activity_plan_id": plan.id},
            {"kind": "email", "mail_template_id": template.id},
            {"kind": "note", "note_body": "Qualified: {{ object.name }}"},
            {"kind": "add_tags", "tag_ids": [Command.set([tag.id, self.tag.id])]},
            {"kind": "remove_tags", "tag_ids": [Command.set(self.tag.ids)]},
            {"kind": "add_followers", "follower_partner_ids": [Command.set(self.partner.ids)]},
            {"kind": "set_field", "set_field_id": self.model_field("priority").id,
             "set_selection_id": self.env.ref("crm.selection__crm_lead__priority__2").id},
            {"kind": "set_field", "set_field_id": self.model_field("medium_id").id,
             "set_value_res_id": self.env.ref("utm.utm_medium_email").id},
            {"kind": "webhook", "webhook_url": "https://hooks.example.com/deals",
             "webhook_field_ids": [Command.set(self.model_field("expected_revenue").ids)]},
            {"kind": "create_project", "new_name": "Delivery of {{ object.name }}"},
            {"kind": "copy_lead", "new_team_id": self.team_b.id},
            {"kind": "repeat_lead", "delay": 6, "delay_unit": "months"},
            {"kind": "assign_team", "team_id": self.team_b.id},
            {"kind": "set_stage", "stage_id": stage.id},
            {"kind": "mark_won"},
            {"kind": "mark_lost", "lost_reason_id": reason.id},
        ], active=False, name="Every action")

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def runs(self, workflow, state=None):
        domain = [("workflow_id", "=", workflow.id)]
        if state:
            domain.append(("state", "=", state))
        return self.env["workflow.automation.run"].search(domain)

    def run_queue(self, at=None):
        """The queue's cron, at the moment ``at`` (by default now)."""
        with frozen_at(at):
            self.env["workflow.automation.run"]._cron_execute_due_runs()

    def scan_at(self, moment):
        """The date triggers' cron at ``moment``."""
        with freeze_time(moment):
            self.env["workflow.automation.trigger"]._cron_scan_date_triggers()

    @contextmanager
    def trap_runs(self):
        """Yield a ``RunsTrap`` of the runs created inside the block (as queue_job's ``trap_jobs``)."""
        yield RunsTrap(self)

    @contextmanager
    def capture_queries(self, flush=True):
        """Yield the list of the SQL queries run inside the block (Odoo's own patch); with
        ``flush``, all is flushed before and after, the commit's tracking hooks included."""
        queries = []
        yield from self._patchExecute(queries, flush=flush)

    def count_queries(self, func):
        """How many queries ``func`` runs with its flush (not the tracking the commit posts)."""
        with self.capture_queries(flush=False) as queries:
            func()
            self.env.flush_all()
        return len(queries)

    def assert_no_extra_query(self, write, create_workflows, records):
        """``write`` costs as many queries with ``create_workflows`` done as without.

        ``records`` holds four records, one per write; each count follows a warm-up
        write, so that both run with warm registry caches. Counted: the write and its flush,
        not the tracking messages that the commit posts (the first ones warm caches up).
        """
        def flushed_write(record):
            write(record)
            self.env.flush_all()

        flushed_write(records[0])
        with self.capture_queries(flush=False) as baseline:
            flushed_write(records[1])
        create_workflows()
        flushed_write(records[2])
        with self.assertQueryCount(len(baseline), flush=False):
            flushed_write(records[3])

    def statement_shapes(self, write, leads):
        """The SQL statements ``write(leads)`` runs, shaped so that the size of the batch
        does not show: Odoo sends rows 100 at a time, so 500 rows are 5 statements of the
        same shape, folded into one here. Mail tracking, which posts one message per
        record at commit whatever the engine does, is left out."""
        leads = leads.with_context(tracking_disable=True)
        leads.invalidate_recordset()
        with self.capture_queries() as queries:
            write(leads)
        shapes = [
            re.sub(r'(%s,\s*)+%s|"[0-9a-f-]{36}"', "%s", " ".join(query.split()))  # values, savepoint names
            for query in queries
        ]
        return [shape for index, shape in enumerate(shapes) if not index or shape != shapes[index - 1]]

    def assert_batch_independent_queries(self, actions, **trigger_values):
        """Moving 10 or 500 leads to Qualified runs the same statements (once warmed up)."""
        workflow = self.create_workflow(
            [{"kind": "stage_reached", "stage_id": self.stage_qualified.id, "actions": actions, **trigger_values}],
            team_ids=[Command.set(self.team_a.ids)],
        )

        def move(leads):
            leads.write({"stage_id": self.stage_qualified.id})

        move(self.create_leads(3))  # warm-up
        small = self.statement_shapes(move, self.create_leads(10))
        large = self.statement_shapes(move, self.create_leads(500))
        self.assertEqual(len(small), len(large), "\n".join(difflib.unified_diff(small, large, lineterm="")))
        self.assertEqual(small, large)
        self.assertEqual(len(self.runs(workflow)), 513)

    @classmethod
    def create_template(cls, **values):
        return cls.env["mail.template"].create({
            "name": "Follow-up",
            "model_id": cls.env["ir.model"]._get_id("crm.lead"),
            "subject": "Your project {{ object.name }}",
            "body_html": "<p>Hello {{ object.partner_id.name }}</p>",
            "partner_to": "{{ object.partner_id.id }}",
            **values,
        })


class RunsTrap:
    """The ``workflow.automation.run`` rows created since the trap was set, however they were
    inserted (ORM or SQL): those of a higher id than any before. Assertions on them, and
    ``perform()`` to execute the scheduled ones now, without waiting until they are due."""

    def __init__(self, case):
        self.case = case
        self.Run = case.env["workflow.automation.run"]
        self.started = fields.Datetime.now()
        self.Run.flush_model()
        case.env.cr.execute(SQL("SELECT COALESCE(MAX(id), 0) FROM workflow_automation_run"))
        self.last_id_before = case.env.cr.fetchone()[0]

    @property
    def runs(self):
        """The trapped runs, in the order they were created."""
        return self.Run.search([("id", ">", self.last_id_before)], order="id")

    def of(self, source, records=None, state=None):
        """The trapped runs of ``source`` (a workflow, a trigger or an action), on ``records``
        if given, in ``state`` if given."""
        field = {
            "workflow.automation": "workflow_id",
            "workflow.automation.trigger": "trigger_id",
            "workflow.automation.action": "action_id",
        }[source._name]
        return self.runs.filtered(lambda run: (
            run[field] in source
            and (records is None or (run.res_model == records._name and run.res_id in records.ids))
            and (state is None or run.state == state)
        ))

    def assert_runs(self, source, records, state=None, count=None):
        """``source`` ran on ``records`` and on no other record: ``count`` runs (by default
        one per record), all in ``state`` if given. Return them."""
        runs = self.of(source)
        self.case.assertEqual(
            {(run.res_model, run.res_id) for run in runs}, {(records._name, record_id) for record_id in records.ids},
            f"the records {source.display_name} ran on",
        )
        self.case.assertEqual(len(runs), len(records) if count is None else count, f"the runs of {source.display_name}")
        if state:
            self.case.assertEqual(set(runs.mapped("state")), {state}, f"the states of {source.display_name}'s runs")
        return runs

    def assert_scheduled(self, source, records, delay=None, count=None):
        """``source`` is scheduled on ``records`` (as ``assert_runs``), due ``delay`` (a
        timedelta) after the trap was set, give or take a minute. Return the runs."""
        runs = self.assert_runs(source, records, state="scheduled", count=count)
        if delay is not None:
            for run in runs:
                self.case.assertAlmostEqual(run.date_due, self.started + delay, delta=timedelta(minutes=1))
        return runs

    def assert_none(self):
        self.case.assertFalse(self.runs, "no run was created")

    def perform(self, source=None):
        """Execute the trapped scheduled runs (of ``source`` if given) now, as the queue
        would once they are due. Return them."""
        runs = self.runs if source is None else self.of(source)
        scheduled = runs.filtered(lambda run: run.state == "scheduled")
        scheduled._execute_scheduled()
        return scheduled


class WebhookEndpoint:
    """A real HTTP server on 127.0.0.1 (a free port) that keeps the JSON documents POSTed to
    it (and their headers) and answers with the scripted ``responses`` (status, body, seconds
    to wait), then 200; ``on_request(count)``, if set, runs before each answer."""

    def __init__(self):
        self.received = []
        self.headers = []
        self.responses = []
        self.on_request = None
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.received.append((self.headers["Content-Type"], json.loads(body)))
                endpoint.headers.append(self.headers)
                if endpoint.on_request:
                    endpoint.on_request(len(endpoint.received))
                status, text, wait = endpoint.responses.pop(0) if endpoint.responses else (200, "ok", 0)
                time.sleep(wait)
                self.send_response(status)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args):
                """Quiet: the tests check what was received."""

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                """A client that gave up waiting (a timeout test) is expected."""

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    @property
    def payloads(self):
        return [payload for _content_type, payload in self.received]


def closed_port_url():
    """The URL of a local port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


# Webhooks may call these hosts although they are not public (the tests' endpoints)
WEBHOOK_ALLOWED_HOSTS = "crm_workflow_automation.webhook_allowed_hosts"


class OutboundCase(WorkflowAutomationCase):
    """With a real local HTTP endpoint, started for each test, that webhooks may call."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].set_param(WEBHOOK_ALLOWED_HOSTS, "127.0.0.1")

    def setUp(self):
        super().setUp()
        self.endpoint = WebhookEndpoint()
        self.addCleanup(self.endpoint.stop)

    def webhook_workflow(self, url=None, target="crm.lead", kind="stage_reached", active=True, **action):
        """A workflow "Tell the ERP" sending a webhook (to the test's endpoint by default)."""
        trigger = {"kind": kind, "stage_id": self.stage_qualified.id} if kind == "stage_reached" else {"kind": kind}
        return self.create_workflow(
            [{**trigger, "actions": [{"kind": "webhook", "webhook_url": url or self.endpoint.url, **action}]}],
            name="Tell the ERP",
            target=target,
            active=active,
        )


class CommittedWorkflowCase(TransactionCase):
    """Tests on real, separately committed cursors, as several Odoo processes at once.

    What they set up is committed, so that other connections see it, and removed after
    the test.
    """

    def commit_stage_workflow(self, name, action, lead_names, plan_templates=None):
        """Commit a pipeline, a switched-on workflow whose ``action`` (values) runs when its
        opportunities reach Qualified, and ``lead_names`` opportunities moved there; with
        ``plan_templates`` (``[{template values}]``), an activity plan the action applies.

        Return the ids of what was committed.
        """
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            team = env["crm.team"].create({"name": f"{name} pipeline"})
            stage = env.ref("crm.stage_lead2")
            plan = env["mail.activity.plan"]
            if plan_templates:
                plan = plan.create({
                    "name": name,
                    "res_model": "crm.lead",
                    "template_ids": [Command.create(template) for template in plan_templates],
                })
                action = dict(action, activity_plan_id=plan.id)
            workflow = env["workflow.automation"].create({
                "name": name,
                "target": "crm.lead",
                "active": True,
                "team_ids": [Command.set(team.ids)],
                "trigger_ids": [Command.create({
                    "kind": "stage_reached", "stage_id": stage.id, "action_ids": [Command.create(action)],
                })],
            })
            leads = env["crm.lead"].create([
                {"name": lead_name, "type": "opportunity", "team_id": team.id} for lead_name in lead_names
            ])
            leads.write({"stage_id": stage.id})
            ids = {"team": team.id, "plan": plan.id, "workflow": workflow.id, "leads": leads.ids}
        self.addCleanup(self._remove_committed, ids)
        return ids

    def _remove_committed(self, ids):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            workflow = env["workflow.automation"].browse(ids["workflow"])
            workflow.active = False
            env["workflow.automation.run"].search([("workflow_id", "=", workflow.id)]).unlink()
            env["crm.lead"].with_context(active_test=False).browse(ids["leads"]).unlink()
            workflow.unlink()
            env["mail.activity.plan"].browse(ids["plan"]).exists().unlink()
            env["crm.team"].browse(ids["team"]).unlink()

import re
from contextlib import contextmanager

from odoo import Command
from odoo.tests import TransactionCase, new_test_user


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

    def fire(self, *actions, leads=None, teams=None):
        """Run ``actions`` by moving ``leads`` (one new lead by default) to Qualified."""
        workflow = self.create_stage_workflow(self.stage_qualified, list(actions), teams=teams)
        leads = leads or self.create_leads()
        leads.with_user(self.salesman).write({"stage_id": self.stage_qualified.id})
        return workflow, leads

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

    @classmethod
    def create_foreign_team(cls):
        """A pipeline of another company: assigning it to our leads fails."""
        other_company = cls.env["res.company"].create({"name": "Other Co"})
        return cls.env["crm.team"].create({"name": "Foreign", "company_id": other_company.id})

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def runs(self, workflow, state=None):
        domain = [("workflow_id", "=", workflow.id)]
        if state:
            domain.append(("state", "=", state))
        return self.env["workflow.automation.run"].search(domain)

    @contextmanager
    def capture_queries(self):
        """Yield the list of the SQL queries run inside the block (Odoo's own patch)."""
        queries = []
        yield from self._patchExecute(queries)

    def assert_no_extra_query(self, write, create_workflows, records):
        """``write`` costs as many queries with ``create_workflows`` done as without.

        ``records`` holds four records, one per write; each count follows a warm-up
        write, so that both run with warm registry caches.
        """
        write(records[0])
        baseline = self.count_queries(lambda: write(records[1]))
        create_workflows()
        write(records[2])
        self.assertEqual(self.count_queries(lambda: write(records[3])), baseline)

    def count_queries(self, func):
        """Run ``func`` with everything flushed before and after; return its SQL query count."""
        self.env.flush_all()
        count = self.cr.sql_log_count
        func()
        self.env.flush_all()
        return self.cr.sql_log_count - count

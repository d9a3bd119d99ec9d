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
    def create_template(cls, **values):
        return cls.env["mail.template"].create({
            "name": "Follow-up",
            "model_id": cls.env["ir.model"]._get_id("crm.lead"),
            "subject": "Your project {{ object.name }}",
            "body_html": "<p>Hello {{ object.partner_id.name }}</p>",
            "partner_to": "{{ object.partner_id.id }}",
            **values,
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

    def count_queries(self, func):
        """Run ``func`` with everything flushed before and after; return its SQL query count."""
        self.env.flush_all()
        count = self.cr.sql_log_count
        func()
        self.env.flush_all()
        return self.cr.sql_log_count - count
